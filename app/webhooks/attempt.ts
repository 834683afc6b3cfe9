/**
 * One signed POST of a delivery, as the delivery processor and the recovery task both send it:
 * the endpoint's live secrets (decrypted once per ciphertext), the Standard Webhooks body and
 * headers (webhook-id = delivery id), and the sender, which never throws.
 */
import type { DeliveryForAttempt } from './delivery-store';
import type { SecretBox } from './secrets';
import type { SendResult, WebhookSender } from './sender';
import { signedHeaders } from './signature';

/** The body receivers get: Standard Webhooks' {type, timestamp, data}, plus the event id. */
export function webhookBody(d: DeliveryForAttempt): string {
  return `{"id":${JSON.stringify(d.eventId)},"type":${JSON.stringify(d.eventType)},"timestamp":${JSON.stringify(d.eventCreatedAt.toISOString())},"data":${d.payload}}`;
}

export interface AttemptSender {
  /** The secrets that sign now (the previous one too during a rotation); throws when one cannot be decrypted. */
  secretsFor(d: DeliveryForAttempt): string[];
  send(d: DeliveryForAttempt, secrets: string[]): Promise<{ startedAt: Date; result: SendResult }>;
}

export function createAttemptSender(deps: { secrets: SecretBox; sender: WebhookSender; now?: () => number }): AttemptSender {
  const { secrets: box, sender } = deps;
  const now = deps.now ?? Date.now;
  /** Decrypting is cheap, but it runs per attempt; the sealed text is the key, so rotation invalidates. */
  const cache = new Map<string, string>();
  const decrypt = (sealed: string, endpointId: string): string => {
    let s = cache.get(sealed);
    if (s === undefined) {
      s = box.decrypt(sealed, endpointId);
      if (cache.size >= 10_000) cache.clear();
      cache.set(sealed, s);
    }
    return s;
  };

  return {
    secretsFor(d) {
      const live = [decrypt(d.secretEncrypted, d.endpointId)];
      if (d.previousSecretEncrypted && d.previousSecretExpiresAt && d.previousSecretExpiresAt.getTime() > now()) {
        live.push(decrypt(d.previousSecretEncrypted, d.endpointId));
      }
      return live;
    },
    async send(d, secrets) {
      const startedAt = new Date(now());
      const body = webhookBody(d);
      const headers = signedHeaders({ webhookId: d.id, timestampSeconds: Math.floor(startedAt.getTime() / 1000), body, secrets });
      return { startedAt, result: await sender.send({ url: d.url, headers: { ...headers }, body }) };
    },
  };
}
