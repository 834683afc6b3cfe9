/**
 * The delivery processor's reads and writes, in SQL written for the hot path: one statement reads
 * a delivery with its event and endpoint, one records an attempt together with the delivery's new
 * state. Calls made together by concurrent jobs are coalesced (batcher.ts), so a busy worker does
 * one round trip for many deliveries.
 */
import type { Db } from '../db/client';
import { createBatcher } from './batcher';
import type { SendResult } from './sender';

/** Deliveries read or recorded in one statement at most. */
const MAX_BATCH = 100;

export interface DeliveryForAttempt {
  id: string;
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

export function createDeliveryStore(db: Db) {
  const load = createBatcher<string, DeliveryForAttempt | undefined>(
    async (ids) => {
      const rows = await db.$queryRaw<DeliveryForAttempt[]>`
        SELECT d."id"::text AS "id", d."status"::text AS "status", d."attemptCount", d."nextAttemptAt", d."eventId"::text AS "eventId",
               e."type" AS "eventType", e."payload"::text AS "payload", e."createdAt" AS "eventCreatedAt",
               d."endpointId"::text AS "endpointId", p."url", p."enabled", p."secretEncrypted", p."previousSecretEncrypted",
               p."previousSecretExpiresAt", p."failingSince"
        FROM "webhook_deliveries" d
        JOIN "events" e ON e."id" = d."eventId"
        JOIN "webhook_endpoints" p ON p."id" = d."endpointId"
        WHERE d."id" = ANY (${ids}::uuid[])`;
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id));
    },
    { maxBatch: MAX_BATCH, keyOf: (id) => id },
  );

  /**
   * Records attempts and the deliveries' states after them, atomically per statement. Attempt
   * numbers come from the rows themselves, so two workers racing on one delivery (a stalled job
   * picked up again) never collide on one. A delivery already delivered stays delivered.
   */
  const record = createBatcher<AttemptRecord, number>(
    async (records) => {
      const col = <T>(f: (r: AttemptRecord) => T) => records.map(f);
      const rows = await db.$queryRaw<{ deliveryId: string; number: number }[]>`
        WITH i AS (
          SELECT * FROM unnest(
            ${col((r) => r.id)}::uuid[], ${col((r) => r.status)}::text[], ${col((r) => iso(r.nextAttemptAt))}::text[],
            ${col((r) => r.result.statusCode ?? null)}::int[], ${col((r) => r.result.error ?? null)}::text[],
            ${col((r) => r.lastError ?? r.result.error ?? null)}::text[], ${col((r) => r.result.responseBody ?? null)}::text[],
            ${col((r) => Math.round(r.result.durationMs))}::int[], ${col((r) => r.startedAt.toISOString())}::text[], ${col((r) => r.at.toISOString())}::text[]
          ) AS t("id", "status", "nextAttemptAt", "statusCode", "error", "lastError", "responseBody", "durationMs", "startedAt", "at")
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
      const numbers = new Map(rows.map((r) => [r.deliveryId, r.number]));
      return records.map((r) => numbers.get(r.id) ?? 0);
    },
    { maxBatch: MAX_BATCH, keyOf: (r) => r.id },
  );

  return { load, record };
}

export type DeliveryStore = ReturnType<typeof createDeliveryStore>;
