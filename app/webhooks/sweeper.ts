/**
 * The outbox sweep for webhook deliveries: pending deliveries that are overdue and have no live
 * job (the enqueue after commit failed because Redis was down, Redis lost its data, or a job
 * ended in BullMQ's failed set after unexpected errors) get their job back. Live jobs (waiting,
 * delayed, active) are left alone, so a backlog is not disturbed; a finished job of a delivery
 * that is pending again is replaced.
 *
 * Each run looks at up to `batch` overdue rows and continues after the last one next time, so
 * a long backlog of rows whose jobs are merely waiting cannot hide a lost one forever.
 */
import type { Db } from '../db/client';
import type { Sweep } from '../queue/processor';
import type { JobProducer } from '../queue/producer';

/** A row is looked at once it is this overdue (default): the api enqueues right after its commit. */
export const SWEEP_GRACE_MS = 5_000;
const BATCH = 500;

export function createWebhookSweep(deps: { db: Db; jobs: Pick<JobProducer, 'ensureJobs'>; now?: () => number; graceMs?: number }): Sweep {
  const { db, jobs } = deps;
  const now = deps.now ?? Date.now;
  const graceMs = deps.graceMs ?? SWEEP_GRACE_MS;
  let after: { at: Date; id: string } | undefined;

  async function run(): Promise<number> {
    const due = new Date(now() - graceMs);
    const rows = after
      ? await db.$queryRaw<{ id: string; nextAttemptAt: Date }[]>`
          SELECT "id", "nextAttemptAt" FROM "webhook_deliveries"
          WHERE "status" = 'pending' AND "nextAttemptAt" <= ${due}::timestamp(3)
            AND ("nextAttemptAt", "id") > (${after.at}::timestamp(3), ${after.id}::uuid)
          ORDER BY "nextAttemptAt", "id" LIMIT ${BATCH}`
      : await db.$queryRaw<{ id: string; nextAttemptAt: Date }[]>`
          SELECT "id", "nextAttemptAt" FROM "webhook_deliveries"
          WHERE "status" = 'pending' AND "nextAttemptAt" <= ${due}::timestamp(3)
          ORDER BY "nextAttemptAt", "id" LIMIT ${BATCH}`;
    after = rows.length === BATCH ? { at: rows[BATCH - 1].nextAttemptAt, id: rows[BATCH - 1].id } : undefined;

    // Live jobs (waiting, delayed, active) are left alone; missing or finished ones are added.
    return jobs.ensureJobs('webhook', rows.map((r) => r.id));
  }

  return { name: 'webhook-outbox', run };
}
