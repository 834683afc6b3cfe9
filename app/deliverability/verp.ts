/**
 * The return path of every email (VERP): `bounces+<email id>.<tag>@<BOUNCE_DOMAIN>`, where the
 * tag is an HMAC of the id under a key derived from ENCRYPTION_KEY. A delivery report reaches us
 * at that address, so the id says which email it is about, and the tag proves that we wrote the
 * address: a forged report (a guessed id, a bad or missing tag) changes nothing.
 *
 * - The key is HKDF-SHA256(ENCRYPTION_KEY, info "easeemail verp v1"), so the webhook-secret key
 *   is never used directly for another purpose.
 * - The tag is 80 bits of HMAC-SHA256, base32 lower case (16 characters): MTAs may change the
 *   case of a local part, and 8 + 36 + 1 + 16 = 61 characters stay under SMTP's 64 (RFC 5321 4.5.3.1.1).
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export const VERP_PREFIX = 'bounces+';
const TAG_BYTES = 10;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function deriveVerpKey(encryptionKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', encryptionKey, Buffer.alloc(0), 'easeemail verp v1', 32));
}

function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function verpTag(key: Buffer, emailId: string): string {
  return base32(createHmac('sha256', key).update(emailId.toLowerCase()).digest().subarray(0, TAG_BYTES));
}

export interface Verp {
  /** The envelope sender for an email. */
  returnPath(emailId: string): string;
  /** The email id of a return path we issued; why not, otherwise. */
  parse(address: string): { emailId: string } | { problem: 'not_bounce_domain' | 'not_verp' | 'bad_tag' };
}

export function createVerp(opts: { key: Buffer; domain: string }): Verp {
  const domain = opts.domain.toLowerCase();
  return {
    returnPath: (emailId) => `${VERP_PREFIX}${emailId}.${verpTag(opts.key, emailId)}@${domain}`,
    parse(address) {
      const bare = address.trim().replace(/^<|>$/g, '');
      const at = bare.lastIndexOf('@');
      if (at < 0 || bare.slice(at + 1).toLowerCase() !== domain) return { problem: 'not_bounce_domain' };
      const local = bare.slice(0, at).toLowerCase();
      if (!local.startsWith(VERP_PREFIX)) return { problem: 'not_verp' };
      const rest = local.slice(VERP_PREFIX.length);
      const dot = rest.lastIndexOf('.');
      const emailId = rest.slice(0, dot);
      const tag = rest.slice(dot + 1);
      if (dot < 0 || !UUID.test(emailId)) return { problem: 'not_verp' };
      const expected = Buffer.from(verpTag(opts.key, emailId));
      const given = Buffer.from(tag);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { problem: 'bad_tag' };
      return { emailId };
    },
  };
}

/** The return paths of this installation, or undefined without BOUNCE_DOMAIN (bounces then go to the From address). */
export function verpFromConfig(config: { bounceDomain?: string; encryptionKey?: Buffer }): Verp | undefined {
  if (!config.bounceDomain) return undefined;
  // The config loader refuses BOUNCE_DOMAIN without ENCRYPTION_KEY.
  if (!config.encryptionKey) throw new Error('BOUNCE_DOMAIN needs ENCRYPTION_KEY');
  return createVerp({ key: deriveVerpKey(config.encryptionKey), domain: config.bounceDomain });
}
