/**
 * Recording an event and fanning it out: one delivery row per enabled endpoint OF THE EVENT'S
 * APPLICATION subscribed to the type (empty eventTypes = all), in the caller's transaction. After the commit the caller
 * enqueues the returned delivery ids (`jobs.enqueue('webhook', ids)`); if that fails the sweeper does it.
 * Used by POST /v1/events and by the email processor for terminal states (email.sent, ...).
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { Prisma } from '../db/client';
import { OPERATIONAL_EVENT_PREFIX } from './operational-types';

type Tx = Prisma.TransactionClient;

export interface RecordedEvent {
  eventId: string;
  deliveryIds: string[];
}

export interface NewEvent {
  /** The application the event belongs to: only its endpoints receive it. */
  applicationId: string;
  type: string;
  payload: Prisma.InputJsonValue;
  apiKeyId?: string | null;
  /** Operational events (operational-events.ts): never fanned out to the endpoint they are about. */
  excludeEndpointId?: string;
}

export async function recordEvent(tx: Tx, input: NewEvent): Promise<RecordedEvent> {
  return (await recordEvents(tx, [input]))[0];
}

/**
 * Any number of events and their deliveries in one statement (one round trip, atomic on its
 * own): POST /v1/events groups concurrent requests into it. Results in the order of `inputs`.
 */
export async function recordEvents(run: Pick<Tx, '$queryRaw'>, inputs: NewEvent[]): Promise<RecordedEvent[]> {
  const { events, sql } = recordEventsStatement(inputs);
  return deliveriesOf(events, await run.$queryRaw<RecordedRow[]>(sql));
}

/**
 * The same statement through a node-postgres pool, prepared (the accept path's own pool: no ORM
 * layer on the path every published event takes; app/api.ts).
 */
export async function recordEventsOn(pool: Pick<Pool, 'query'>, inputs: NewEvent[]): Promise<RecordedEvent[]> {
  const { events, sql } = recordEventsStatement(inputs);
  const { rows } = await pool.query<RecordedRow>({ name: 'events-record', text: sql.text, values: sql.values });
  return deliveriesOf(events, rows);
}

interface RecordedRow {
  eventId: string;
  deliveryIds: string[];
}

function recordEventsStatement(inputs: NewEvent[]) {
  // Ids made here, so each result finds its deliveries without relying on insert order.
  const events = inputs.map((e) => ({ id: randomUUID(), applicationId: e.applicationId, type: e.type, payload: e.payload, apiKeyId: e.apiKeyId ?? null, excludeEndpointId: e.excludeEndpointId ?? null }));
  // UTC text, read as timestamp(3) (the zone is ignored): the same instant whichever driver sends it.
  const now = new Date().toISOString();
  const sql = Prisma.sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(events)}::jsonb) AS i("id" uuid, "applicationId" uuid, "type" text, "payload" jsonb, "apiKeyId" uuid, "excludeEndpointId" uuid)
    ), e AS (
      INSERT INTO "events" ("id", "applicationId", "apiKeyId", "type", "payload", "createdAt")
      SELECT i."id", i."applicationId", i."apiKeyId", i."type", i."payload", ${now}::timestamp(3) FROM input i
      RETURNING "id", "applicationId", "type", "createdAt" AS "at"
    ), recorded AS (
      SELECT e.*, i."excludeEndpointId" FROM e JOIN input i ON i."id" = e."id"
    ), d AS (${fanOutInsert('recorded')})
    SELECT "eventId"::text AS "eventId", array_agg("id"::text) AS "deliveryIds" FROM d GROUP BY "eventId"`;
  return { events, sql };
}

function deliveriesOf(events: { id: string }[], rows: RecordedRow[]): RecordedEvent[] {
  const deliveries = new Map(rows.map((r) => [r.eventId, r.deliveryIds]));
  return events.map((e) => ({ eventId: e.id, deliveryIds: deliveries.get(e.id) ?? [] }));
}

/**
 * The fan-out rule, as the body of a data-modifying CTE for statements that record events (this
 * file, and the email worker's outcome statement that records many at once): one `pending`
 * delivery, due at once, per enabled endpoint subscribed to the type, for each row of CTE
 * `events` ("id", "applicationId", "type", "at", "excludeEndpointId"). Only endpoints of the
 * event's application. Subscribed: the endpoint lists the type,
 * or lists none (= all) and the type is not operational (operational types reach only endpoints
 * that list them: "every type" means the types an application publishes and the email.*
 * lifecycle, not news about other endpoints); never the endpoint an operational event is about
 * ("excludeEndpointId"). Returns "id" and "eventId" of each delivery.
 */
export function fanOutInsert(events: string): Prisma.Sql {
  if (!/^[a-z_]+$/.test(events)) throw new Error(`not a CTE name: ${events}`);
  return Prisma.sql`
    INSERT INTO "webhook_deliveries" ("id", "applicationId", "eventId", "endpointId", "status", "nextAttemptAt", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), p."applicationId", ev."id", p."id", 'pending', ev."at", ev."at", ev."at"
    FROM ${Prisma.raw(`"${events}"`)} ev JOIN "webhook_endpoints" p
      ON p."applicationId" = ev."applicationId" AND p."enabled"
      AND ((COALESCE(cardinality(p."eventTypes"), 0) = 0 AND NOT starts_with(ev."type", ${OPERATIONAL_EVENT_PREFIX}))
           OR ev."type" = ANY (p."eventTypes"))
      AND p."id" IS DISTINCT FROM ev."excludeEndpointId"
    RETURNING "id", "eventId"`;
}
