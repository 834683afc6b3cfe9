/**
 * One signed POST of a delivery, as the delivery processor and the recovery task both send it:
 * the endpoint's live secrets (decrypted and turned into signers once per ciphertext), the
 * Standard Webhooks body and headers (webhook-id = delivery id), and the sender, which never throws.
 */
import type { DeliveryForAttempt } from './delivery-store';
import type { SecretBox } from './secrets';
import type { SendResult, WebhookSender } from './sender';
import { signedHeaders, signerFor, type Signer } from './signature';

/** The body receivers get: Standard Webhooks' {type, timestamp, data}, plus the event id. */
export function webhookBody(d: DeliveryForAttempt): string {
  return `{"id":${JSON.stringify(d.eventId)},"type":${JSON.stringify(d.eventType)},"timestamp":${JSON.stringify(d.eventCreatedAt.toISOString())},"data":${d.payload}}`;
}

export interface AttemptSender {
  /**
   * The signers of the secrets that sign now (the previous one too during a rotation, in its own
   * scheme); throws when one cannot be decrypted or read.
   */
  signersFor(d: DeliveryForAttempt): Signer[];
  send(d: DeliveryForAttempt, signers: Signer[]): Promise<{ startedAt: Date; result: SendResult }>;
}

export function createAttemptSender(deps: { secrets: SecretBox; sender: WebhookSender; now?: () => number }): AttemptSender {
  const { secrets: box, sender } = deps;
  const now = deps.now ?? Date.now;
  /**
   * Decrypting (and parsing an ed25519 key) is cheap, but it would run per attempt; the sealed
   * text is the cache key, so a rotation invalidates.
   */
  const cache = new Map<string, Signer>();
  const signer = (sealed: string, endpointId: string): Signer => {
    let s = cache.get(sealed);
    if (s === undefined) {
      s = signerFor(box.decrypt(sealed, endpointId));
      if (cache.size >= 10_000) cache.clear();
      cache.set(sealed, s);
    }
    return s;
  };

  return {
    signersFor(d) {
      const live = [signer(d.secretEncrypted, d.endpointId)];
      if (d.previousSecretEncrypted && d.previousSecretExpiresAt && d.previousSecretExpiresAt.getTime() > now()) {
        live.push(signer(d.previousSecretEncrypted, d.endpointId));
      }
      return live;
    },
    async send(d, signers) {
      const startedAt = new Date(now());
      const body = webhookBody(d);
      const headers = signedHeaders({ webhookId: d.id, timestampSeconds: Math.floor(startedAt.getTime() / 1000), body, signers });
      return { startedAt, result: await sender.send({ url: d.url, headers: { ...headers }, body }) };
    },
  };
}
