/**
 * The worker's periodic repairs for emails (outbox rule, DESIGN.md section 2):
 * - scheduled rows whose time has come become queued and get a job;
 * - queued rows with no live job (the api could not reach Redis, or Redis lost its data) and
 *   `sending` rows whose worker died and whose job is gone get one. A row of a batch request
 *   (deliveryBatchId) is covered while its batch job is unfinished; after that it gets a job of
 *   its own.
 * Rows are visited in id order in pages, resuming where the previous run stopped, so a long
 * backlog cannot hide a row behind others.
 */
import type { Db } from '../db/client';
import type { Queues } from '../queue';
import type { Sweep } from '../queue/processor';
import type { JobProducer } from '../queue/producer';

const PAGE = 1_000;
const FIRST_ID = '00000000-0000-0000-0000-000000000000';
/** Upper bound of rows looked at per run, so one run stays short. */
const MAX_PER_RUN = 20_000;

export function createEmailSweeps(deps: {
  db: Db;
  jobs: Pick<JobProducer, 'ensureJobs' | 'unfinished'>;
  /** For the live-job count only. */
  queues: Pick<Queues, 'email' | 'emailBatch'>;
  /** Rows younger than this are left alone: their api request may still be enqueueing them. */
  graceMs: number;
  /** A `sending` row is orphaned after this (JOB_LOCK_MS). */
  leaseMs: number;
}): Sweep[] {
  const { db, jobs, graceMs, leaseMs } = deps;

  async function dueScheduled(): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await db.$queryRaw<{ id: string }[]>`
        UPDATE "emails" SET "status" = 'queued', "updatedAt" = timezone('UTC', now())
        WHERE "id" IN (
          SELECT "id" FROM "emails" WHERE "status" = 'scheduled' AND "scheduledAt" <= timezone('UTC', now())
          ORDER BY "scheduledAt" LIMIT ${PAGE} FOR UPDATE SKIP LOCKED)
        RETURNING "id"`;
      await jobs.ensureJobs('email', rows.map((r) => r.id));
      total += rows.length;
      if (rows.length < PAGE || total >= MAX_PER_RUN) return total;
    }
  }

  // Where the previous run stopped: a backlog longer than one run is covered over several runs.
  let after = FIRST_ID;

  /**
   * Cheap test first: when Redis holds at least as many live jobs as unfinished rows need (one
   * each, one per batch for a batch's rows), every row has its job (jobs of finished rows do not
   * stay live), and a long healthy backlog is not re-checked row by row on every run.
   */
  async function mayHaveOrphans(): Promise<boolean> {
    const states = ['waiting', 'active', 'delayed', 'prioritized'] as const;
    const [[{ pending }], ...counts] = await Promise.all([
      db.$queryRaw<{ pending: number }[]>`
        SELECT (count(*) FILTER (WHERE "deliveryBatchId" IS NULL) + count(DISTINCT "deliveryBatchId"))::int AS "pending"
        FROM "emails" WHERE "status" IN ('queued', 'sending', 'scheduled')`,
      deps.queues.email.getJobCounts(...states),
      deps.queues.emailBatch.getJobCounts(...states),
    ]);
    const live = counts.flatMap((c) => Object.values(c)).reduce((sum, n) => sum + (n ?? 0), 0);
    return live < pending;
  }

  async function orphans(): Promise<number> {
    if (!(await mayHaveOrphans())) return 0;
    let added = 0;
    for (let seen = 0; seen < MAX_PER_RUN; ) {
      const rows = await db.$queryRaw<{ id: string; deliveryBatchId: string | null }[]>`
        SELECT "id", "deliveryBatchId" FROM "emails"
        WHERE "id" > ${after}::uuid AND (
          ("status" = 'queued' AND "updatedAt" < timezone('UTC', now()) - make_interval(secs => ${graceMs / 1000}))
          OR ("status" = 'sending' AND "updatedAt" < timezone('UTC', now()) - make_interval(secs => ${(leaseMs + graceMs) / 1000})))
        ORDER BY "id" LIMIT ${PAGE}`;
      if (rows.length === 0) {
        after = FIRST_ID;
        break;
      }
      const batches = await jobs.unfinished('emailBatch', [...new Set(rows.flatMap((r) => (r.deliveryBatchId ? [r.deliveryBatchId] : [])))]);
      added += await jobs.ensureJobs('email', rows.filter((r) => !r.deliveryBatchId || !batches.has(r.deliveryBatchId)).map((r) => r.id));
      seen += rows.length;
      after = rows[rows.length - 1].id;
      if (rows.length < PAGE) {
        after = FIRST_ID;
        break;
      }
    }
    return added;
  }

  return [
    { name: 'email-scheduled-due', run: dueScheduled },
    { name: 'email-outbox', run: orphans },
  ];
}
