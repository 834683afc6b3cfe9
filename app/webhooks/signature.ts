/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, sent as `v1,<base64 HMAC-SHA256>` keyed with a
 * `whsec_` secret's decoded bytes, or as `v1a,<base64 ed25519 signature>` made with a `whsk_`
 * secret key (receivers verify it with the `whpk_` public key). During a rotation every live
 * secret signs, each in its own scheme, space-separated, so receivers holding either the old or
 * the new secret (or public key) verify.
 */
import { createHmac, sign } from 'node:crypto';
import { ed25519KeyPair, schemeOfSecret, secretKeyBytes } from './secrets';

/** Signs the content of one message; built once per secret (the ed25519 key is parsed once). */
export interface Signer {
  /** `v1,<base64>` or `v1a,<base64>` of `${webhookId}.${timestampSeconds}.${body}`. */
  sign(webhookId: string, timestampSeconds: number, body: string): string;
}

const content = (webhookId: string, timestampSeconds: number, body: string) => `${webhookId}.${timestampSeconds}.${body}`;

/** The signer of a secret, by its prefix; throws when the secret is neither format (nothing of it is in the message). */
export function signerFor(secret: string): Signer {
  if (schemeOfSecret(secret) === 'ed25519') {
    const { privateKey } = ed25519KeyPair(secret);
    return { sign: (id, ts, body) => `v1a,${sign(null, Buffer.from(content(id, ts, body)), privateKey).toString('base64')}` };
  }
  const key = secretKeyBytes(secret);
  return { sign: (id, ts, body) => `v1,${createHmac('sha256', key).update(content(id, ts, body)).digest('base64')}` };
}

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function signedHeaders(input: { webhookId: string; timestampSeconds: number; body: string; signers: readonly Signer[] }): SignedHeaders {
  if (input.signers.length === 0) throw new Error('signing needs at least one secret');
  return {
    'webhook-id': input.webhookId,
    'webhook-timestamp': String(input.timestampSeconds),
    'webhook-signature': input.signers.map((s) => s.sign(input.webhookId, input.timestampSeconds, input.body)).join(' '),
  };
}
