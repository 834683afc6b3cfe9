/** Request and response shapes of /v1/suppressions; the same zod schemas validate and document. */
import { z } from 'zod';
import { decimalInt } from '../shared/text';
import { MAX_ADDRESS_LENGTH, normaliseAddress } from './address';

export const SUPPRESSION_REASONS = ['hard_bounce', 'complaint', 'manual'] as const;
export const suppressionReason = z.enum(SUPPRESSION_REASONS).meta({ id: 'SuppressionReason' });

/** An address as a client gives it; stored normalised (domain lower-cased, trimmed). */
export const suppressionAddress = z
  .string()
  .max(MAX_ADDRESS_LENGTH, `at most ${MAX_ADDRESS_LENGTH} characters`)
  .transform((value, ctx) => {
    const address = normaliseAddress(value);
    if (!address) {
      ctx.addIssue({ code: 'custom', message: 'must be one email address such as user@example.com (no CR, LF or NUL)' });
      return z.NEVER;
    }
    return address;
  })
  .meta({ description: 'An email address; stored with the domain lower-cased', example: 'jane@example.com' });

export const createSuppressionSchema = z
  .strictObject({
    address: suppressionAddress,
    reason: z.literal('manual').default('manual').meta({ description: 'Only manual entries can be added through the API' }),
    detail: z.string().max(500).regex(/^[^\0]*$/, 'must not contain NUL').optional().meta({ description: 'Why, for the people reading the list' }),
  })
  .meta({ id: 'CreateSuppression' });

export const suppressionSchema = z
  .object({
    address: z.string(),
    reason: suppressionReason,
    emailId: z.uuid().nullable().meta({ description: 'The email whose bounce or complaint added it' }),
    detail: z.string().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Suppression' });

export const suppressionListSchema = z
  .object({ data: z.array(suppressionSchema), nextCursor: z.string().nullable().meta({ description: 'Pass as cursor for the next page; null on the last' }) })
  .meta({ id: 'SuppressionList' });

export const suppressionListQuery = z.strictObject({
  reason: suppressionReason.optional(),
  search: z
    .string()
    .min(1)
    .max(MAX_ADDRESS_LENGTH)
    .regex(/^[^\s\0]+$/, 'one word without spaces')
    .optional()
    .meta({ description: 'Part of an address, case-insensitive' }),
  limit: decimalInt(1, 100).default(20),
  cursor: z.string().max(200).optional(),
});

export const suppressionParams = z.object({ address: z.string().meta({ description: 'The address, URL-encoded', example: 'jane%40example.com' }) });

export type CreateSuppressionInput = z.infer<typeof createSuppressionSchema>;
export type SuppressionReason = z.infer<typeof suppressionReason>;
