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
  /**
   * With `checkType`: whether the application registered the type with a schema (then the event
   * was NOT recorded: the caller validates the payload and records it again without the flag),
   * and whether the type is deprecated.
   */
  type?: { hasSchema: boolean; deprecated: boolean; registered?: RegisteredType };
}

/** A type's registration as the payload check needs it (event-types.ts). */
export interface RegisteredType {
  id: string;
  version: number;
  deprecated: boolean;
  schema: Prisma.JsonValue | null;
}

export interface NewEvent {
  /** The application the event belongs to: only its endpoints receive it. */
  applicationId: string;
  type: string;
  payload: Prisma.InputJsonValue;
  apiKeyId?: string | null;
  /** Operational events (operational-events.ts): never fanned out to the endpoint they are about. */
  excludeEndpointId?: string;
  /**
   * Read the application's registration of the type in the same statement (POST /v1/events): the
   * event is recorded only when the type has no schema to check; see RecordedEvent.type.
   */
  checkType?: boolean;
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
  deliveryIds: string[] | null;
  checked: boolean;
  hasSchema: boolean;
  deprecated: boolean;
  typeId: string | null;
  typeVersion: number | null;
  typeSchema: Prisma.JsonValue | null;
}

function recordEventsStatement(inputs: NewEvent[]) {
  // Ids made here, so each result finds its deliveries without relying on insert order.
  const events = inputs.map((e) => ({ id: randomUUID(), applicationId: e.applicationId, type: e.type, payload: e.payload, apiKeyId: e.apiKeyId ?? null, excludeEndpointId: e.excludeEndpointId ?? null, check: e.checkType === true }));
  // UTC text, read as timestamp(3) (the zone is ignored): the same instant whichever driver sends it.
  const now = new Date().toISOString();
  // "typed": a checked event whose type is registered with a schema (an object, as the validator
  // takes it) is not inserted; every input comes back, with its deliveries when it was, and a
  // schema to check with when it was not.
  const sql = Prisma.sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(events)}::jsonb) AS i("id" uuid, "applicationId" uuid, "type" text, "payload" jsonb, "apiKeyId" uuid, "excludeEndpointId" uuid, "check" boolean)
    ), typed AS (
      SELECT i.*, COALESCE(jsonb_typeof(t."schema") IN ('object', 'array'), false) AS "hasSchema", COALESCE(t."deprecated", false) AS "deprecated",
             t."id"::text AS "typeId", t."version" AS "typeVersion", t."schema" AS "typeSchema"
      FROM input i LEFT JOIN "event_types" t ON i."check" AND t."applicationId" = i."applicationId" AND t."name" = i."type"
    ), e AS (
      INSERT INTO "events" ("id", "applicationId", "apiKeyId", "type", "payload", "createdAt")
      SELECT i."id", i."applicationId", i."apiKeyId", i."type", i."payload", ${now}::timestamp(3) FROM typed i WHERE NOT i."hasSchema"
      RETURNING "id", "applicationId", "type", "createdAt" AS "at"
    ), recorded AS (
      SELECT e.*, i."excludeEndpointId" FROM e JOIN input i ON i."id" = e."id"
    ), d AS (${fanOutInsert('recorded')})
    SELECT ty."id"::text AS "eventId", ty."check" AS "checked", ty."hasSchema", ty."deprecated", g."deliveryIds",
           ty."typeId", ty."typeVersion", CASE WHEN ty."hasSchema" THEN ty."typeSchema" END AS "typeSchema"
    FROM typed ty LEFT JOIN (SELECT "eventId", array_agg("id"::text) AS "deliveryIds" FROM d GROUP BY "eventId") g ON g."eventId" = ty."id"`;
  return { events, sql };
}

function deliveriesOf(events: { id: string }[], rows: RecordedRow[]): RecordedEvent[] {
  const byId = new Map(rows.map((r) => [r.eventId, r]));
  return events.map((e) => {
    const r = byId.get(e.id);
    const recorded: RecordedEvent = { eventId: e.id, deliveryIds: r?.deliveryIds ?? [] };
    if (r?.checked) {
      recorded.type = { hasSchema: r.hasSchema, deprecated: r.deprecated };
      if (r.typeId !== null && r.typeVersion !== null) recorded.type.registered = { id: r.typeId, version: r.typeVersion, deprecated: r.deprecated, schema: r.typeSchema };
    }
    return recorded;
  });
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
