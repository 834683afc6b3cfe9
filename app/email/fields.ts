/**
 * Email field schemas: mailbox addresses, one or a list. The rules under them live in the shared
 * kernel (header safety: shared/headers.ts, mailbox syntax: shared/mailbox.ts).
 */
import { z } from 'zod';
import { hasHeaderBreak, HEADER_BREAK_MESSAGE } from '../shared/headers';
import { formatMailbox, parseMailbox } from '../shared/mailbox';
import { EMAIL_LIMITS } from './limits';

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
