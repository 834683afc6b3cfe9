/**
 * Finding things after the fact: events by type and time, an endpoint's deliveries by status and
 * time, one delivery with its attempts, and an endpoint's health (stats). Every listing is newest
 * first with keyset cursors (shared/cursor.ts) served by an index that starts with the filter
 * columns, so a page costs an index range of `limit + 1` rows however deep the client pages.
 *
 * Stats come from bounded index ranges, not a scan of the delivery history: counts from the
 * endpoint's deliveries of the last 7 days ((endpointId, createdAt) index), the newest success
 * from the (endpointId, status, createdAt) index, attempt durations from the attempts of the
 * newest STATS_SAMPLE deliveries of the last 24 hours.
 */
import type { Db, Prisma } from '../db/client';
import { NotFoundError } from '../errors';
import { beforeKeyset, decodeKeysetCursor, pageOf } from '../shared/cursor';
import { attemptFields, deliveryFields } from './delivery-views';
import type { DeliveryListQuery, EventListQuery } from './listing-schemas';

const HOUR_MS = 3600_000;
/** Deliveries whose attempts feed the duration percentiles: bounds the cost on a busy endpoint. */
export const STATS_SAMPLE = 10_000;

const iso = (d: Date | null) => d?.toISOString() ?? null;

const deliveryInclude = { event: { select: { type: true } }, endpoint: { select: { url: true } } } as const;
type DeliveryRow = Prisma.WebhookDeliveryGetPayload<{ include: typeof deliveryInclude }>;

function deliverySummary(d: DeliveryRow) {
  return { ...deliveryFields(d), eventType: d.event.type };
}

const createdWithin = (q: { since?: Date; until?: Date }) =>
  q.since || q.until ? { createdAt: { ...(q.since ? { gte: q.since } : {}), ...(q.until ? { lt: q.until } : {}) } } : {};

export function createWebhookListings(deps: { db: Db; now?: () => number }) {
  const { db } = deps;
  const now = deps.now ?? Date.now;

  /** The endpoint, in the caller's application: the queries after this one are about it alone. */
  async function endpointExists(applicationId: string, endpointId: string): Promise<{ failingSince: Date | null }> {
    const endpoint = await db.webhookEndpoint.findUnique({ where: { id: endpointId, applicationId }, select: { failingSince: true } });
    if (!endpoint) throw new NotFoundError(`no webhook endpoint with id ${endpointId}`);
    return endpoint;
  }

  async function listEvents(applicationId: string, q: EventListQuery) {
    const after = q.cursor === undefined ? undefined : decodeKeysetCursor(q.cursor);
    const rows = await db.event.findMany({
      where: { AND: [{ applicationId }, q.type ? { type: q.type } : {}, createdWithin(q), beforeKeyset(after)] },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: q.limit + 1,
      select: { id: true, type: true, createdAt: true, payload: q.withPayload },
    });
    const { page, nextCursor } = pageOf(rows, q.limit);
    return {
      data: page.map((e) => ({ id: e.id, type: e.type, createdAt: e.createdAt.toISOString(), ...(q.withPayload ? { payload: e.payload as Record<string, unknown> } : {}) })),
      nextCursor,
    };
  }

  async function listDeliveries(applicationId: string, endpointId: string, q: DeliveryListQuery) {
    const after = q.cursor === undefined ? undefined : decodeKeysetCursor(q.cursor);
    await endpointExists(applicationId, endpointId);
    const rows = await db.webhookDelivery.findMany({
      where: { AND: [{ applicationId, endpointId }, q.status ? { status: q.status } : {}, createdWithin(q), beforeKeyset(after)] },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: q.limit + 1,
      include: deliveryInclude,
    });
    const { page, nextCursor } = pageOf(rows, q.limit);
    return { data: page.map(deliverySummary), nextCursor };
  }

  async function getDelivery(applicationId: string, id: string) {
    const d = await db.webhookDelivery.findUnique({ where: { id, applicationId }, include: { ...deliveryInclude, attempts: { orderBy: { number: 'asc' } } } });
    if (!d) throw new NotFoundError(`no webhook delivery with id ${id}`);
    return {
      ...deliverySummary(d),
      attempts: d.attempts.map(attemptFields),
    };
  }

  async function endpointStats(applicationId: string, endpointId: string) {
    const { failingSince } = await endpointExists(applicationId, endpointId);
    const t = now();
    const day = new Date(t - 24 * HOUR_MS);
    const week = new Date(t - 7 * 24 * HOUR_MS);
    const [counts, lastSuccess, durations] = await Promise.all([
      db.$queryRaw<{ status: string; day: bigint; week: bigint }[]>`
        SELECT "status"::text AS "status", count(*) FILTER (WHERE "createdAt" >= ${day}::timestamp(3)) AS "day", count(*) AS "week"
        FROM "webhook_deliveries" WHERE "endpointId" = ${endpointId}::uuid AND "createdAt" >= ${week}::timestamp(3)
        GROUP BY "status"`,
      // A retried older delivery may have succeeded after a newer one: look at a few.
      db.$queryRaw<{ at: Date | null }[]>`
        SELECT max("deliveredAt") AS "at" FROM (
          SELECT "deliveredAt" FROM "webhook_deliveries" WHERE "endpointId" = ${endpointId}::uuid AND "status" = 'delivered'
          ORDER BY "createdAt" DESC LIMIT 20) newest`,
      db.$queryRaw<{ p50: number | null; p95: number | null; samples: bigint }[]>`
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a."durationMs") AS "p50",
               percentile_cont(0.95) WITHIN GROUP (ORDER BY a."durationMs") AS "p95", count(*) AS "samples"
        FROM (SELECT "id" FROM "webhook_deliveries" WHERE "endpointId" = ${endpointId}::uuid AND "createdAt" >= ${day}::timestamp(3)
              ORDER BY "createdAt" DESC LIMIT ${STATS_SAMPLE}) d
        JOIN "webhook_attempts" a ON a."deliveryId" = d."id"`,
    ]);
    const window = (pick: 'day' | 'week') => {
      const by = (status: string) => Number(counts.find((c) => c.status === status)?.[pick] ?? 0);
      const out = { delivered: by('delivered'), failed: by('failed'), pending: by('pending') + by('delivering'), total: 0 };
      out.total = out.delivered + out.failed + out.pending;
      return out;
    };
    const d = durations[0];
    return {
      endpointId,
      last24h: window('day'),
      last7d: window('week'),
      lastSuccessAt: iso(lastSuccess[0]?.at ?? null),
      failingSince: iso(failingSince),
      attemptDurationMs: { p50: d?.p50 ?? null, p95: d?.p95 ?? null, samples: Number(d?.samples ?? 0) },
    };
  }

  return { listEvents, listDeliveries, getDelivery, endpointStats };
}

export type WebhookListings = ReturnType<typeof createWebhookListings>;
