/**
 * DKIM (RFC 6376) signing with relaxed/relaxed canonicalisation, rsa-sha256 or ed25519-sha256
 * (RFC 8463), of the message the worker has already composed into one buffer.
 *
 * Why our own signer rather than nodemailer's `dkim` option: nodemailer signs with RSA only, and
 * the issue asks for Ed25519 too; this is the same algorithm in one small module for both.
 *
 * Keys: PKCS#8 / PKCS#1 PEM. RSA must be at least 2048 bits (1024-bit keys are refused by
 * Gmail and Yahoo since 2024); Ed25519 keys are also accepted. `dkimKeyProblem` is what the
 * config loader uses, so a bad key stops the process at start (exit 2), not a send later.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimKey {
  key: KeyObject;
  algorithm: DkimAlgorithm;
}

export interface DkimSettings extends DkimKey {
  domain: string;
  selector: string;
}

export const MIN_RSA_BITS = 2048;

/** Headers signed when present (RFC 6376 5.4.1's list, plus our id header). From is always signed. */
const SIGNED_HEADERS = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc', 'mime-version', 'content-type',
  'content-transfer-encoding', 'in-reply-to', 'references', 'list-id', 'list-unsubscribe', 'list-unsubscribe-post', 'x-easeemail-id',
];

/** The key from PEM text (literal "\n" accepted: env files often carry one line), or why not. */
export function parseDkimKey(pem: string): DkimKey | { problem: string } {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem);
  } catch {
    return { problem: 'is not a PEM private key (generate one with "easeemail dkim keygen")' };
  }
  if (key.asymmetricKeyType === 'ed25519') return { key, algorithm: 'ed25519-sha256' };
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return { problem: `is an RSA key of ${bits} bits; DKIM needs at least ${MIN_RSA_BITS}` };
    return { key, algorithm: 'rsa-sha256' };
  }
  return { problem: `is a ${key.asymmetricKeyType ?? 'unknown'} key; use RSA (2048 bits) or Ed25519` };
}

export function generateDkimKey(type: 'rsa' | 'ed25519'): string {
  const pair =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
      : generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return pair.privateKey;
}

/** The TXT record's value: `v=DKIM1; k=rsa; p=<SPKI DER base64>` or, for Ed25519 (RFC 8463), the raw 32-byte key. */
export function dkimRecordValue(key: DkimKey): string {
  const spki = createPublicKey(key.key).export({ type: 'spki', format: 'der' });
  // An Ed25519 SPKI is a fixed 12-byte prefix followed by the 32-byte key.
  const p = key.algorithm === 'ed25519-sha256' ? spki.subarray(spki.length - 32) : spki;
  return `v=DKIM1; k=${key.algorithm === 'ed25519-sha256' ? 'ed25519' : 'rsa'}; p=${p.toString('base64')}`;
}

/** A zone-file line; TXT strings are at most 255 characters (RFC 1035 3.3), so long keys are split. */
export function dkimDnsRecord(settings: DkimSettings): { name: string; value: string; zoneLine: string } {
  const name = `${settings.selector}._domainkey.${settings.domain}`;
  const value = dkimRecordValue(settings);
  const strings = value.match(/.{1,255}/g)!.map((s) => `"${s}"`).join(' ');
  return { name, value, zoneLine: `${name}. IN TXT ( ${strings} )` };
}

/** Relaxed header canonicalisation (RFC 6376 3.4.2) of one raw header field. */
function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).trim().toLowerCase();
  const value = field.slice(colon + 1).replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim();
  return `${name}:${value}`;
}

/** Relaxed body canonicalisation (RFC 6376 3.4.4). */
function relaxedBody(body: Buffer): Buffer {
  const text = body.toString('latin1'); // bytes in, bytes out: hashing must not re-encode
  const lines = text.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return Buffer.from(lines.length ? `${lines.join('\r\n')}\r\n` : '', 'latin1');
}

function splitMessage(raw: Buffer): { fields: string[]; body: Buffer } {
  const end = raw.indexOf('\r\n\r\n');
  const head = (end < 0 ? raw : raw.subarray(0, end)).toString('latin1');
  const body = end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4);
  const fields: string[] = [];
  for (const line of head.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length) fields[fields.length - 1] += `\r\n${line}`;
    else if (line) fields.push(line);
  }
  return { fields, body };
}

/** The message with a DKIM-Signature header in front. `now` in seconds (t=). */
export function signMessage(raw: Buffer, settings: DkimSettings, now = Math.floor(Date.now() / 1000)): Buffer {
  const { fields, body } = splitMessage(raw);
  // Instances are signed from the bottom up (RFC 6376 5.4.2); each name once is enough here.
  const chosen: string[] = [];
  const names: string[] = [];
  for (const name of SIGNED_HEADERS) {
    for (let i = fields.length - 1; i >= 0; i--) {
      if (fields[i].slice(0, fields[i].indexOf(':')).trim().toLowerCase() === name) {
        chosen.push(relaxedHeader(fields[i]));
        names.push(name);
        break;
      }
    }
  }
  const bodyHash = createHash('sha256').update(relaxedBody(body)).digest('base64');
  const header =
    `DKIM-Signature: v=1; a=${settings.algorithm}; c=relaxed/relaxed; d=${settings.domain}; s=${settings.selector}; t=${now};\r\n` +
    `\th=${names.join(':')};\r\n\tbh=${bodyHash};\r\n\tb=`;
  const signedData = Buffer.from(`${chosen.join('\r\n')}\r\n${relaxedHeader(header)}`, 'latin1');
  const signature =
    settings.algorithm === 'ed25519-sha256'
      ? sign(null, createHash('sha256').update(signedData).digest(), settings.key) // RFC 8463 3: Ed25519 over the SHA-256 hash
      : sign('sha256', signedData, settings.key);
  return Buffer.concat([Buffer.from(`${header}${signature.toString('base64')}\r\n`, 'latin1'), raw]);
}

/** Whether an address (bare or "Name <a@b>") is in the signing domain. */
export function isInDomain(address: string, domain: string): boolean {
  const m = /<([^<>]+)>\s*$/.exec(address);
  const bare = (m ? m[1] : address).trim();
  return bare.slice(bare.lastIndexOf('@') + 1).toLowerCase() === domain.toLowerCase();
}
