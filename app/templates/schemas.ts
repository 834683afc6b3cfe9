/** Request and response shapes of /v1/templates; the same schemas validate and document. */
import { z } from 'zod';
import { decimalInt } from '../shared/text';
import { headerText, MAX_HEADER_LINE } from '../shared/headers';
import { looksLikeUuid } from '../shared/ids';

export const templateName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit, at most 100')
  .refine((v) => !looksLikeUuid(v), 'must not look like a UUID (names and ids share the URL)')
  .meta({ example: 'welcome' });

const templateSource = z.string().max(1024 * 1024);

export const templateSubject = headerText(MAX_HEADER_LINE).min(1).meta({ example: 'Welcome, {{ user.name }}!' });

export const createTemplateSchema = z
  .strictObject({
    name: templateName,
    subject: templateSubject,
    html: templateSource.optional().meta({ example: '<p>Hello {{ user.name }}</p>' }),
    text: templateSource.optional().meta({ example: 'Hello {{ user.name }}' }),
  })
  .refine((t) => t.html !== undefined || t.text !== undefined, { path: ['text'], message: 'give html, text or both' })
  .meta({
    id: 'CreateTemplate',
    description:
      'Variables: `{{ name }}` (HTML-escaped in html, as-is in subject and text), `{{{ name }}}` (not escaped in html). ' +
      'Dotted paths reach nested data (`{{ user.name }}`); every variable must be present when rendering.',
  });

export const updateTemplateSchema = z
  .strictObject({
    name: templateName.optional(),
    subject: templateSubject.optional(),
    html: templateSource.nullable().optional().meta({ description: 'null removes the HTML body' }),
    text: templateSource.nullable().optional().meta({ description: 'null removes the text body' }),
  })
  .refine((t) => Object.keys(t).length > 0, { message: 'give at least one field to change' })
  .meta({ id: 'UpdateTemplate' });

export const templateData = z.record(z.string(), z.unknown()).meta({ description: 'Values for the template variables', example: { user: { name: 'Jane' } } });

export const renderTemplateSchema = z.strictObject({ data: templateData.default({}) }).meta({ id: 'RenderTemplateRequest' });

export const templateSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    subject: z.string(),
    html: z.string().nullable(),
    text: z.string().nullable(),
    variables: z.array(z.string()).meta({ description: 'Variables the template uses' }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Template' });

/** A list entry: no bodies (they can be 1 MiB each); GET the template for them and its variables. */
export const templateSummarySchema = z
  .object({ id: z.uuid(), name: z.string(), subject: z.string(), createdAt: z.iso.datetime(), updatedAt: z.iso.datetime() })
  .meta({ id: 'TemplateSummary' });

export const templateListSchema = z
  .object({ data: z.array(templateSummarySchema), nextCursor: z.string().nullable() })
  .meta({ id: 'TemplateList' });

export const renderedTemplateSchema = z
  .object({ subject: z.string(), html: z.string().nullable(), text: z.string().nullable() })
  .meta({ id: 'RenderedTemplate' });

export const templateListQuery = z.strictObject({
  limit: decimalInt(1, 100).default(20),
  cursor: z.string().max(200).optional().meta({ description: 'nextCursor of the previous page' }),
});

export const templateParams = z.object({ idOrName: z.string().meta({ description: 'Template id (UUID) or name' }) });

export type CreateTemplateInput = z.infer<typeof createTemplateSchema>;
export type UpdateTemplateInput = z.infer<typeof updateTemplateSchema>;
