/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, HMAC-SHA256 keyed with the secret's decoded
 * bytes, sent as `v1,<base64>`. During a rotation every live secret signs, space-separated, so
 * receivers holding either the old or the new secret verify.
 */
import { createHmac } from 'node:crypto';
import { secretKeyBytes } from './secrets';

export function signatureFor(secret: string, webhookId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secretKeyBytes(secret)).update(`${webhookId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function signedHeaders(input: { webhookId: string; timestampSeconds: number; body: string; secrets: readonly string[] }): SignedHeaders {
  if (input.secrets.length === 0) throw new Error('signing needs at least one secret');
  return {
    'webhook-id': input.webhookId,
    'webhook-timestamp': String(input.timestampSeconds),
    'webhook-signature': input.secrets.map((s) => signatureFor(s, input.webhookId, input.timestampSeconds, input.body)).join(' '),
  };
}
