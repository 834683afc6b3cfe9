/**
 * Recording an event and fanning it out: one delivery row per enabled endpoint subscribed to the
 * type (empty eventTypes = all), in the caller's transaction. After the commit the caller
 * enqueues the returned delivery ids (`enqueueDeliveries`); if that fails the sweeper does it.
 * Used by POST /v1/events and by the email processor for terminal states (email.sent, ...).
 */
import type { Prisma } from '../db/client';
import { createCoalescer } from '../email/coalesce';
import type { Queues } from '../queue';

type Tx = Prisma.TransactionClient;

export interface RecordedEvent {
  eventId: string;
  deliveryIds: string[];
}

export async function recordEvent(
  tx: Tx,
  input: { type: string; payload: Prisma.InputJsonValue; apiKeyId?: string | null },
): Promise<RecordedEvent> {
  // One statement (one round trip, atomic on its own): the event, then a delivery per enabled
  // endpoint whose eventTypes is empty (= all) or has the type. nextAttemptAt = now: due at
  // once, so the sweeper finds it if the enqueue after commit is lost.
  const now = new Date();
  const rows = await tx.$queryRaw<{ eventId: string; deliveryIds: string[] }[]>`
    WITH e AS (
      INSERT INTO "events" ("id", "apiKeyId", "type", "payload", "createdAt")
      VALUES (gen_random_uuid(), ${input.apiKeyId ?? null}::uuid, ${input.type}, ${JSON.stringify(input.payload)}::jsonb, ${now}::timestamp(3))
      RETURNING "id"
    ), d AS (
      INSERT INTO "webhook_deliveries" ("id", "eventId", "endpointId", "status", "nextAttemptAt", "createdAt", "updatedAt")
      SELECT gen_random_uuid(), e."id", p."id", 'pending', ${now}::timestamp(3), ${now}::timestamp(3), ${now}::timestamp(3)
      FROM e CROSS JOIN "webhook_endpoints" p
      WHERE p."enabled" AND (COALESCE(cardinality(p."eventTypes"), 0) = 0 OR ${input.type} = ANY (p."eventTypes"))
      RETURNING "id"
    )
    SELECT (SELECT "id" FROM e)::text AS "eventId", COALESCE((SELECT array_agg("id"::text) FROM d), '{}') AS "deliveryIds"`;
  return { eventId: rows[0].eventId, deliveryIds: rows[0].deliveryIds };
}

/**
 * Retries and waits between attempts are the processor's business (it parks the job until the
 * delivery's nextAttemptAt); BullMQ's own attempts only cover an unexpected error in the
 * processor itself (database briefly unreachable), retried after 2, 4, 8, 16 s. A completed job
 * is removed at once: PostgreSQL keeps the history, and a job added again for a finished
 * delivery only finds it finished.
 */
export function deliveryJobOptions(deliveryId: string) {
  return { jobId: deliveryId, attempts: 5, backoff: { type: 'exponential', delay: 2_000 }, removeOnComplete: true };
}

/** An add that does not answer within this long is left to the sweeper: requests never hang on Redis. */
const ENQUEUE_TIMEOUT_MS = 2_000;
const adders = new WeakMap<Queues['webhook'], (ids: string[]) => Promise<void>>();

/** Adds from concurrent callers go to Redis together, in one addBulk (group commit). */
function adderFor(queue: Queues['webhook']): (ids: string[]) => Promise<void> {
  let add = adders.get(queue);
  if (!add) {
    add = createCoalescer<string>({
      maxInFlight: 2,
      maxItems: 1_000,
      async run(ids) {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            queue.addBulk(ids.map((deliveryId) => ({ name: 'deliver', data: { deliveryId }, opts: deliveryJobOptions(deliveryId) }))),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ENQUEUE_TIMEOUT_MS} ms`)), ENQUEUE_TIMEOUT_MS);
            }),
          ]);
        } finally {
          clearTimeout(timer);
        }
      },
    });
    adders.set(queue, add);
  }
  return add;
}

/** Best effort, never rejects: a failure here is repaired by the sweeper (outbox rule). */
export async function enqueueDeliveries(queues: Queues, deliveryIds: string[]): Promise<boolean> {
  if (deliveryIds.length === 0) return true;
  try {
    await adderFor(queues.webhook)(deliveryIds);
    return true;
  } catch {
    return false;
  }
}
