/**
 * Recording an event and fanning it out: one delivery row per enabled endpoint OF THE EVENT'S
 * APPLICATION subscribed to the type (empty eventTypes = all), in the caller's transaction. After the commit the caller
 * enqueues the returned delivery ids (`jobs.enqueue('webhook', ids)`); if that fails the sweeper does it.
 * Used by POST /v1/events and by the email processor for terminal states (email.sent, ...).
 */
import type { Prisma } from '../db/client';
import { isOperationalEventType } from './operational-types';

type Tx = Prisma.TransactionClient;

export interface RecordedEvent {
  eventId: string;
  deliveryIds: string[];
}

export async function recordEvent(
  tx: Tx,
  input: {
    applicationId: string;
    type: string;
    payload: Prisma.InputJsonValue;
    apiKeyId?: string | null;
    /** Operational events (operational-events.ts): never fanned out to the endpoint they are about. */
    excludeEndpointId?: string;
  },
): Promise<RecordedEvent> {
  // Operational types reach only endpoints that list them: "every type" means the types an
  // application publishes and the email.* lifecycle, not news about other endpoints.
  const onlyIfListed = isOperationalEventType(input.type);
  // One statement (one round trip, atomic on its own): the event, then a delivery per enabled
  // endpoint whose eventTypes is empty (= all) or has the type. nextAttemptAt = now: due at
  // once, so the sweeper finds it if the enqueue after commit is lost.
  const now = new Date();
  const rows = await tx.$queryRaw<{ eventId: string; deliveryIds: string[] }[]>`
    WITH e AS (
      INSERT INTO "events" ("id", "applicationId", "apiKeyId", "type", "payload", "createdAt")
      VALUES (gen_random_uuid(), ${input.applicationId}::uuid, ${input.apiKeyId ?? null}::uuid, ${input.type}, ${JSON.stringify(input.payload)}::jsonb, ${now}::timestamp(3))
      RETURNING "id"
    ), d AS (
      INSERT INTO "webhook_deliveries" ("id", "applicationId", "eventId", "endpointId", "status", "nextAttemptAt", "createdAt", "updatedAt")
      SELECT gen_random_uuid(), p."applicationId", e."id", p."id", 'pending', ${now}::timestamp(3), ${now}::timestamp(3), ${now}::timestamp(3)
      FROM e CROSS JOIN "webhook_endpoints" p
      WHERE p."applicationId" = ${input.applicationId}::uuid AND p."enabled" AND ((COALESCE(cardinality(p."eventTypes"), 0) = 0 AND NOT ${onlyIfListed}) OR ${input.type} = ANY (p."eventTypes"))
        AND p."id" IS DISTINCT FROM ${input.excludeEndpointId ?? null}::uuid
      RETURNING "id"
    )
    SELECT (SELECT "id" FROM e)::text AS "eventId", COALESCE((SELECT array_agg("id"::text) FROM d), '{}') AS "deliveryIds"`;
  return { eventId: rows[0].eventId, deliveryIds: rows[0].deliveryIds };
}
