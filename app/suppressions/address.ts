/**
 * One spelling per address, so a suppression matches whatever form the address had when it was
 * sent, bounced or typed: the bare address (display name and angle brackets dropped), trimmed,
 * with the domain lower-cased. The local part keeps its case: RFC 5321 2.4 leaves it to the
 * receiving server, and a suppression must never silence a different mailbox.
 */
import { hasHeaderBreak } from '../shared/headers';
import { parseMailbox } from '../shared/mailbox';

/** RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets. */
export const MAX_ADDRESS_LENGTH = 254;

export function normaliseAddress(input: string): string | undefined {
  if (input.length > MAX_ADDRESS_LENGTH * 4 || hasHeaderBreak(input)) return undefined;
  const parsed = parseMailbox(input.trim());
  if (!parsed || parsed.address.length > MAX_ADDRESS_LENGTH) return undefined;
  const at = parsed.address.lastIndexOf('@');
  return `${parsed.address.slice(0, at)}@${parsed.address.slice(at + 1).toLowerCase()}`;
}

/** Normalised addresses of stored mailboxes (`"Name" <a@b>` or `a@b`); unparseable ones are left out. */
export function normaliseAll(mailboxes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const m of mailboxes) {
    const n = normaliseAddress(m);
    if (n) out.add(n);
  }
  return [...out];
}
