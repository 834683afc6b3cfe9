/**
 * The delivery processor's reads and writes, in SQL written for the hot path: one statement reads
 * deliveries with their events and endpoints, one records attempts together with the deliveries'
 * new states. Calls made together by concurrent jobs are coalesced (group commit), so a busy
 * worker does one round trip for many deliveries. They go through a small pg pool of their own
 * as prepared statements: no ORM layer on the path every delivery takes twice, and PostgreSQL
 * plans each statement once per connection (measured: ~13 % less worker CPU per delivery than
 * the same SQL through Prisma's $queryRaw).
 */
import type { Pool } from 'pg';
import { createCoalescer } from '../shared/coalesce';
import type { SendResult } from './sender';

/** Deliveries read or recorded in one statement at most. */
const MAX_BATCH = 100;
/** Statements of each kind running at once; what arrives meanwhile waits for the next batch. */
const MAX_IN_FLIGHT = 2;
/**
 * A finished attempt waits this long for others to share its statement: attempts end one by one,
 * and only the job's end waits on the record (the receiver has its answer). bench:webhooks,
 * fan-out 1: 2,734 → 2,989 deliveries/s, PostgreSQL 0.12 → 0.09 and worker 0.33 → 0.30 ms of CPU
 * a delivery; accept → delivered p99 7.1 → 9.2 ms. (Lingering the load too saved little more
 * and put 2 ms on every delivery's latency.)
 */
const RECORD_LINGER_MS = 3;

export interface DeliveryForAttempt {
  id: string;
  applicationId: string;
  status: string;
  attemptCount: number;
  nextAttemptAt: Date | null;
  eventId: string;
  eventType: string;
  /** The event payload as JSON text, sent as it is. */
  payload: string;
  eventCreatedAt: Date;
  endpointId: string;
  url: string;
  enabled: boolean;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
  failingSince: Date | null;
  /** Deliveries per second to this endpoint (rate-limiter.ts); null: no limit. */
  rateLimit: number | null;
}

export interface AttemptRecord {
  id: string;
  startedAt: Date;
  result: SendResult;
  status: 'delivered' | 'pending' | 'failed';
  nextAttemptAt: Date | null;
  at: Date;
  /** The delivery's lastError when it is not the attempt's own error. */
  lastError?: string;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

// Timestamps are stored as UTC without a zone (as Prisma stores them): read back AT TIME ZONE 'UTC'.
const LOAD_SQL = `
  SELECT d."id"::text AS "id", d."applicationId"::text AS "applicationId", d."status"::text AS "status", d."attemptCount", d."nextAttemptAt" AT TIME ZONE 'UTC' AS "nextAttemptAt",
         d."eventId"::text AS "eventId", e."type" AS "eventType", e."payload"::text AS "payload",
         e."createdAt" AT TIME ZONE 'UTC' AS "eventCreatedAt", d."endpointId"::text AS "endpointId", p."url", p."enabled",
         p."secretEncrypted", p."previousSecretEncrypted", p."previousSecretExpiresAt" AT TIME ZONE 'UTC' AS "previousSecretExpiresAt",
         p."failingSince" AT TIME ZONE 'UTC' AS "failingSince", p."rateLimit"
  FROM "webhook_deliveries" d
  JOIN "events" e ON e."id" = d."eventId"
  JOIN "webhook_endpoints" p ON p."id" = d."endpointId"
  WHERE d."id" = ANY ($1::uuid[])`;

const RECORD_SQL = `
  WITH i AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[])
      AS t("id", "status", "nextAttemptAt", "statusCode", "error", "lastError", "responseBody", "durationMs", "startedAt", "at")
  ), d AS (
    UPDATE "webhook_deliveries" w SET
      "attemptCount" = w."attemptCount" + 1,
      "status" = CASE WHEN w."status" = 'delivered' THEN w."status" ELSE i."status"::"DeliveryStatus" END,
      "nextAttemptAt" = CASE WHEN w."status" = 'delivered' THEN NULL ELSE i."nextAttemptAt"::timestamp(3) END,
      "lastStatusCode" = i."statusCode",
      "lastError" = i."lastError",
      "deliveredAt" = CASE WHEN i."status" = 'delivered' THEN COALESCE(w."deliveredAt", i."at"::timestamp(3)) ELSE w."deliveredAt" END,
      "updatedAt" = i."at"::timestamp(3)
    FROM i WHERE w."id" = i."id"
    RETURNING w."id", w."attemptCount"
  )
  INSERT INTO "webhook_attempts" ("id", "deliveryId", "number", "startedAt", "durationMs", "statusCode", "responseBody", "error")
  SELECT gen_random_uuid(), d."id", d."attemptCount", i."startedAt"::timestamp(3), i."durationMs", i."statusCode", i."responseBody", i."error"
  FROM d JOIN i ON i."id" = d."id"
  RETURNING "deliveryId"::text AS "deliveryId", "number"`;

export function createDeliveryStore(pool: Pool) {
  // Each unit carries its answer back: the coalescer only says when its batch is done.
  const loadBatch = createCoalescer<{ id: string; found?: DeliveryForAttempt }>({
    maxInFlight: MAX_IN_FLIGHT,
    maxItems: MAX_BATCH,
    async run(units) {
      const ids = [...new Set(units.map((u) => u.id))];
      const { rows } = await pool.query<DeliveryForAttempt>({ name: 'webhook-delivery-load', text: LOAD_SQL, values: [ids] });
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const u of units) u.found = byId.get(u.id);
    },
  });

  const recordBatch = createCoalescer<{ record: AttemptRecord; number?: number }>({
    maxInFlight: MAX_IN_FLIGHT,
    maxItems: MAX_BATCH,
    lingerMs: RECORD_LINGER_MS,
    async run(units) {
      // One statement updates a row once: a delivery twice in a batch (a duplicate job) goes in a second round.
      for (let rest = units; rest.length > 0; ) {
        const seen = new Set<string>();
        const round = rest.filter((u) => !seen.has(u.record.id) && seen.add(u.record.id));
        rest = rest.filter((u) => !round.includes(u));
        const col = <T>(f: (r: AttemptRecord) => T) => round.map((u) => f(u.record));
        const { rows } = await pool.query<{ deliveryId: string; number: number }>({
          name: 'webhook-attempt-record',
          text: RECORD_SQL,
          values: [
            col((r) => r.id),
            col((r) => r.status),
            col((r) => iso(r.nextAttemptAt)),
            col((r) => r.result.statusCode ?? null),
            col((r) => r.result.error ?? null),
            col((r) => r.lastError ?? r.result.error ?? null),
            col((r) => r.result.responseBody ?? null),
            col((r) => Math.round(r.result.durationMs)),
            col((r) => r.startedAt.toISOString()),
            col((r) => r.at.toISOString()),
          ],
        });
        const numbers = new Map(rows.map((r) => [r.deliveryId, r.number]));
        for (const u of round) u.number = numbers.get(u.record.id) ?? 0;
      }
    },
  });

  async function load(id: string): Promise<DeliveryForAttempt | undefined> {
    const unit: { id: string; found?: DeliveryForAttempt } = { id };
    await loadBatch([unit]);
    return unit.found;
  }

  /**
   * Records an attempt and the delivery's state after it, atomically (one statement per batch).
   * Attempt numbers come from the rows themselves, so two workers racing on one delivery (a
   * stalled job picked up again) never collide on one. A delivery already delivered stays
   * delivered. Resolves with the attempt's number.
   */
  async function record(r: AttemptRecord): Promise<number> {
    const unit: { record: AttemptRecord; number?: number } = { record: r };
    await recordBatch([unit]);
    return unit.number ?? 0;
  }

  return { load, record };
}

export type DeliveryStore = ReturnType<typeof createDeliveryStore>;
