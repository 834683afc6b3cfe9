/**
 * Endpoint signing secrets: `whsec_` + base64 of 32 random bytes (the Standard Webhooks format),
 * stored encrypted with AES-256-GCM under ENCRYPTION_KEY. The endpoint id is bound in as
 * additional authenticated data, so a ciphertext copied onto another endpoint's row does not
 * decrypt there.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ConfigError } from '../config';

export const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 32;
/** Secrets brought by the user (migrations from another provider) may be 24 to 64 bytes. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/** Why a user-supplied secret is unacceptable, or undefined when it is fine. */
export function secretProblem(secret: string): string | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return `must start with "${SECRET_PREFIX}"`;
  const body = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(body) || body.length % 4 !== 0) return `must be "${SECRET_PREFIX}" followed by standard base64`;
  const n = Buffer.from(body, 'base64').length;
  if (n < MIN_SECRET_BYTES || n > MAX_SECRET_BYTES) return `must encode ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes (got ${n})`;
  return undefined;
}

/** The HMAC key: the bytes the base64 part decodes to (Standard Webhooks). */
export function secretKeyBytes(secret: string): Buffer {
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

/** The webhook code cannot run without the key; called at startup of the api and the worker. */
export function requireEncryptionKey(key: Buffer | undefined): Buffer {
  if (!key) {
    throw new ConfigError([
      'ENCRYPTION_KEY: required, webhook endpoint secrets are stored encrypted with it ' +
        '(32 bytes as 64 hex characters or base64, e.g. `openssl rand -base64 32`; or ENCRYPTION_KEY_FILE)',
    ]);
  }
  return key;
}

export interface SecretBox {
  encrypt(secret: string, endpointId: string): string;
  /** Throws when the ciphertext was not made with this key for this endpoint. */
  decrypt(sealed: string, endpointId: string): string;
}

export function createSecretBox(key: Buffer): SecretBox {
  const aad = (endpointId: string) => Buffer.from(`webhook-endpoint:${endpointId}`);
  return {
    encrypt(secret, endpointId) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad(endpointId));
      const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
      return [iv, cipher.getAuthTag(), ciphertext].map((b) => b.toString('base64')).join('.');
    },
    decrypt(sealed, endpointId) {
      const [iv, tag, ciphertext] = sealed.split('.').map((p) => Buffer.from(p, 'base64'));
      if (!iv || !tag || !ciphertext || iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
        throw new Error('endpoint secret: malformed ciphertext');
      }
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(aad(endpointId));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
      } catch {
        // Never echo the ciphertext or key; the likely cause is a changed ENCRYPTION_KEY.
        throw new Error('endpoint secret: cannot decrypt (was ENCRYPTION_KEY changed?)');
      }
    },
  };
}
