/**
 * Field rules shared by the email and template schemas: header-safe text (no CR/LF, the classic
 * header-injection vector), mailbox addresses, and the problem+json response used in OpenAPI.
 */
import { z } from 'zod';
import { EMAIL_LIMITS } from './limits';

/** CR, LF or NUL anywhere: such a value could end a header line and start another. */
const HEADER_BREAK = /[\r\n\0]/;
const NO_HEADER_BREAK = /^[^\r\n\0]*$/;
export const HEADER_BREAK_MESSAGE = 'must not contain CR, LF or NUL characters (header injection)';

export function hasHeaderBreak(value: string): boolean {
  return HEADER_BREAK.test(value);
}

/** Text that ends up in a header line. */
export function headerText(max: number) {
  return z.string().max(max).regex(NO_HEADER_BREAK, HEADER_BREAK_MESSAGE);
}

export interface Mailbox {
  name?: string;
  address: string;
}

// `user@example.com`, `Name <user@example.com>` or `"Doe, Jane" <user@example.com>`.
const ANGLE_FORM = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^<>]*?))\s*<([^<>\s]+)>\s*$/;
const ADDRESS = z.regexes.email;

export function parseMailbox(input: string): Mailbox | undefined {
  if (hasHeaderBreak(input)) return undefined;
  const bare = input.trim();
  if (ADDRESS.test(bare)) return { address: bare };
  const m = ANGLE_FORM.exec(input);
  if (!m || !ADDRESS.test(m[3])) return undefined;
  const name = (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]).trim();
  return name ? { name, address: m[3] } : { address: m[3] };
}

/**
 * The stored, canonical form: the display name always quoted, so a comma in it can never split
 * one mailbox into two when the SMTP layer parses the header again.
 */
export function formatMailbox(m: Mailbox): string {
  return m.name ? `"${m.name.replace(/(["\\])/g, '\\$1')}" <${m.address}>` : m.address;
}

/**
 * The bare address of a stored mailbox (for Message-ID's domain). MAIL_FROM comes from
 * configuration and may use a domain the API would refuse (`no-reply@localhost`), so the angle
 * form is read leniently too.
 */
export function mailboxAddress(stored: string): string {
  return parseMailbox(stored)?.address ?? /<([^<>\s]+)>\s*$/.exec(stored)?.[1] ?? stored.trim();
}

export const mailbox = z
  .string()
  .max(EMAIL_LIMITS.addressLength)
  .transform((value, ctx) => {
    if (hasHeaderBreak(value)) {
      ctx.addIssue({ code: 'custom', message: HEADER_BREAK_MESSAGE });
      return z.NEVER;
    }
    const parsed = parseMailbox(value);
    if (!parsed) {
      ctx.addIssue({ code: 'custom', message: `"${value.slice(0, 80)}" is not an email address (use user@example.com or Name <user@example.com>)` });
      return z.NEVER;
    }
    return formatMailbox(parsed);
  })
  .meta({ description: 'user@example.com or "Name <user@example.com>"', example: 'Jane Doe <jane@example.com>' });

/** One address or a list; stored as a list. */
export function mailboxList(max: number, required: boolean) {
  return z
    .preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(mailbox).min(required ? 1 : 0, 'give at least one address').max(max, `at most ${max} addresses`))
    .meta({
      // The document shows what clients may send: one address or a list (the preprocess step
      // is invisible to the generator, which would describe only the list).
      override: ({ jsonSchema }) => {
        const item = jsonSchema.items as Record<string, unknown>;
        for (const key of Object.keys(jsonSchema)) delete jsonSchema[key];
        jsonSchema.anyOf = [item, { type: 'array', items: item, minItems: required ? 1 : 0, maxItems: max }];
      },
    });
}

/** RFC 9457 problem details, as every error response of the API. */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ path: z.string().meta({ description: 'JSON pointer to the field' }), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (e.g. invalid JSON)',
  401: 'Missing or invalid API key',
  403: 'The API key lacks the scope',
  404: 'Not found',
  409: 'Conflict',
  413: 'Request body too large',
  415: 'Body is not application/json',
  422: 'Invalid fields; `errors` names each one',
  429: 'Rate limited; see Retry-After',
};

/** problem+json responses for the given statuses, for an operation's `responses`. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [String(s), { description: PROBLEM_DESCRIPTIONS[s] ?? 'Error', content: { 'application/problem+json': { schema: problemSchema } } }]),
  );
}
