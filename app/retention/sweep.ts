/**
 * Retention (an application's retentionDays setting, else RETENTION_DAYS, 30 by default): events older than the period are deleted with their
 * webhook deliveries and attempts; emails older than it that reached a final state keep their
 * row (status, recipients, subject, metadata, attempts, delivery reports) and lose their bodies,
 * template data and attachments; inbound messages kept for inspection (inbound_messages: the
 * envelope and the first 16 KiB of mail that changed nothing) older than it are deleted, those
 * that name no application under RETENTION_DAYS. Delivery reports (email_reports) hold no raw
 * mail, only what was classified (kind, recipient, status, a one-line diagnostic): they stay on
 * the email's timeline like its attempts.
 *
 * The worker's sweeper runs this in bounded batches (RETENTION_BATCH_SIZE events, emails or
 * inbound messages per statement) with a pause between them (RETENTION_PAUSE_MS) and at most
 * runBudgetMs of work per sweep, shared equally by the three kinds, so a large backlog
 * (a first run over a year of history) goes out gradually instead of in one long transaction
 * that would hold locks, bloat WAL and slow the accept path. Rows are picked with SKIP LOCKED, so
 * worker replicas sweeping at once share the work instead of waiting on each other.
 */
import { Counter, type Registry } from 'prom-client';
import { Prisma, type Db } from '../db/client';
import type { Sweep } from '../queue/processor';
import { RETENTION_DEFAULTS } from './defaults';

const DAY_MS = 24 * 3600_000;

export interface RetentionOptions {
  /** RETENTION_DAYS: for applications whose own retentionDays setting is null. */
  retentionDays: number;
  /** Events, emails or inbound messages per statement. */
  batch?: number;
  /** Pause between two statements. */
  pauseMs?: number;
  /** Work per sweep run at most; the rest is for the next run. */
  runBudgetMs?: number;
  now?: () => number;
}

export function createRetentionMetrics(registry: Registry) {
  const deleted = new Counter({
    name: 'easeemail_retention_rows_deleted_total',
    help: 'Rows deleted by retention (RETENTION_DAYS), by table: events, webhook_deliveries, webhook_attempts, inbound_messages',
    labelNames: ['table'] as const,
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'easeemail_retention_email_bodies_dropped_total',
    help: 'Emails whose bodies, template data and attachments retention dropped (the rows stay)',
    registers: [registry],
  });
  return {
    deleted: (table: string, n: number) => n > 0 && deleted.inc({ table }, n),
    dropped: (n: number) => n > 0 && dropped.inc(n),
  };
}

export type RetentionMetrics = ReturnType<typeof createRetentionMetrics>;

/** Whose rows a batch is about, and their period (null: RETENTION_DAYS). */
interface Owner<Id extends string | null> {
  id: Id;
  retentionDays: number | null;
}

export function createRetentionSweep(deps: { db: Db; metrics?: RetentionMetrics } & RetentionOptions): Sweep {
  const { db, metrics } = deps;
  const now = deps.now ?? Date.now;
  const batch = deps.batch ?? RETENTION_DEFAULTS.batch;
  const pauseMs = deps.pauseMs ?? RETENTION_DEFAULTS.pauseMs;
  const budgetMs = deps.runBudgetMs ?? RETENTION_DEFAULTS.runBudgetMs;

  /** One batch of old events with their deliveries and attempts, in one statement; rows deleted. */
  async function deleteEvents(applicationId: string, cutoff: Date): Promise<number> {
    const [r] = await db.$queryRaw<{ events: bigint; deliveries: bigint; attempts: bigint }[]>`
      WITH e AS (
        SELECT "id" FROM "events" WHERE "applicationId" = ${applicationId}::uuid AND "createdAt" < ${cutoff}::timestamp(3)
        ORDER BY "createdAt" LIMIT ${batch} FOR UPDATE SKIP LOCKED
      ), d AS (
        SELECT "id" FROM "webhook_deliveries" WHERE "eventId" IN (SELECT "id" FROM e)
      ), da AS (
        DELETE FROM "webhook_attempts" WHERE "deliveryId" IN (SELECT "id" FROM d) RETURNING 1
      ), dd AS (
        DELETE FROM "webhook_deliveries" WHERE "id" IN (SELECT "id" FROM d) RETURNING 1
      ), de AS (
        DELETE FROM "events" WHERE "id" IN (SELECT "id" FROM e) RETURNING 1
      )
      SELECT (SELECT count(*) FROM de) AS "events", (SELECT count(*) FROM dd) AS "deliveries", (SELECT count(*) FROM da) AS "attempts"`;
    metrics?.deleted('events', Number(r.events));
    metrics?.deleted('webhook_deliveries', Number(r.deliveries));
    metrics?.deleted('webhook_attempts', Number(r.attempts));
    return Number(r.events) + Number(r.deliveries) + Number(r.attempts);
  }

  /** One batch of old finished emails losing their bodies; emails changed. */
  async function dropEmailBodies(applicationId: string, cutoff: Date): Promise<number> {
    const n = await db.$executeRaw`
      UPDATE "emails" SET "text" = NULL, "html" = NULL, "attachments" = NULL, "templateData" = NULL
      WHERE "id" IN (
        SELECT "id" FROM "emails"
        WHERE "applicationId" = ${applicationId}::uuid AND "createdAt" < ${cutoff}::timestamp(3) AND "status" IN ('sent', 'failed', 'cancelled', 'bounced', 'suppressed')
          AND ("text" IS NOT NULL OR "html" IS NOT NULL OR "attachments" IS NOT NULL OR "templateData" IS NOT NULL)
        ORDER BY "createdAt" LIMIT ${batch} FOR UPDATE SKIP LOCKED)`;
    metrics?.dropped(n);
    return n;
  }

  /**
   * One batch of old inbound messages of an application, or (applicationId null) of those that
   * name none; rows deleted. Walks inbound_messages (applicationId, receivedAt) from the old end.
   */
  async function deleteInboundMessages(applicationId: string | null, cutoff: Date): Promise<number> {
    const owner = applicationId === null ? Prisma.sql`"applicationId" IS NULL` : Prisma.sql`"applicationId" = ${applicationId}::uuid`;
    const n = await db.$executeRaw`
      DELETE FROM "inbound_messages" WHERE "id" IN (
        SELECT "id" FROM "inbound_messages" WHERE ${owner} AND "receivedAt" < ${cutoff}::timestamp(3)
        ORDER BY "receivedAt" LIMIT ${batch} FOR UPDATE SKIP LOCKED)`;
    metrics?.deleted('inbound_messages', n);
    return n;
  }

  /**
   * Batches of one kind, owner after owner (each under its own period), until nothing is left or
   * this kind's share of the run's budget is spent; rows acted on.
   */
  async function drain<Id extends string | null>(owners: Owner<Id>[], step: (owner: Id, cutoff: Date) => Promise<number>, shareMs: number): Promise<number> {
    const started = now();
    let total = 0;
    for (const owner of owners) {
      const cutoff = new Date(now() - (owner.retentionDays ?? deps.retentionDays) * DAY_MS);
      for (;;) {
        const n = await step(owner.id, cutoff);
        total += n;
        if (n === 0 || now() - started >= shareMs) break;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      if (now() - started >= shareMs) break;
    }
    return total;
  }

  async function run(): Promise<number> {
    // Each application's own period (its retentionDays setting), or RETENTION_DAYS; oldest first.
    const applications = await db.application.findMany({ select: { id: true, retentionDays: true }, orderBy: { createdAt: 'asc' } });
    // An equal share of the budget each, so a long event backlog does not keep the others waiting.
    const share = budgetMs / 3;
    let total = await drain(applications, deleteEvents, share);
    total += await drain(applications, dropEmailBodies, share);
    // Inbound mail that names no application is kept as long as the installation default says.
    total += await drain<string | null>([...applications, { id: null, retentionDays: null }], deleteInboundMessages, share);
    return total;
  }

  return { name: 'retention', run };
}
