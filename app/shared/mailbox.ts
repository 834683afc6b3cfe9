/**
 * Mailboxes as written in headers: `user@example.com`, `Name <user@example.com>` or
 * `"Doe, Jane" <user@example.com>`. Parsing refuses header breaks (headers.ts); the stored form
 * always quotes the display name. Used by email fields and by suppressions.
 */
import { z } from 'zod';
import { hasHeaderBreak } from './headers';

export interface Mailbox {
  name?: string;
  address: string;
}

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
