/**
 * The recovery task (queue `webhook-recovery`, job id = recovery id; recoveries.ts records it):
 * re-sends the endpoint's failed deliveries of the window one after the other, in event order,
 * each once, signed as always (same webhook-id), within the endpoint's rate limit.
 *
 * - One at a time, so the receiver gets them in order; the task holds one slot of its own queue,
 *   so delivery workers and other endpoints are not touched however long it runs.
 * - Its place ((createdAt, id) of the last delivery handled) and counts are saved every
 *   SAVE_EVERY deliveries: a task picked up again after a crash or a shutdown continues there
 *   (the few since the last save may be sent twice: at least once, as every delivery).
 * - Each re-send is one attempt, recorded like any other; a failure leaves the delivery failed.
 *   After MAX_CONSECUTIVE_FAILURES failures in a row the endpoint is down again: the task stops
 *   as `failed`, saying why, and a later recover picks up the rest.
 * - On shutdown it stops between two deliveries and hands its job back (delayed 1 s), so the
 *   worker's drain is not held up by a long recovery.
 */
import { DelayedError, type Job } from 'bullmq';
import type { Pool } from 'pg';
import type { Db } from '../db/client';
import type { Logger } from '../log';
import { JOBS, jobRowId } from '../queue';
import type { QueueProcessor } from '../queue/processor';
import type { AttemptSender } from './attempt';
import { createDeliveryStore } from './delivery-store';
import type { EndpointRateLimiter } from './rate-limiter';

const BATCH = 200;
const SAVE_EVERY = 50;
export const MAX_CONSECUTIVE_FAILURES = 10;

export interface RecoveryTaskDeps {
  db: Db;
  pool: Pool;
  log: Logger;
  attempts: AttemptSender;
  rateLimiter: EndpointRateLimiter;
  isShuttingDown: () => boolean;
  /** Re-sends by result (delivered, failed). */
  onResend?: (outcome: 'delivered' | 'failed') => void;
  now?: () => number;
}

export function createRecoveryProcessor(deps: RecoveryTaskDeps): QueueProcessor {
  const { db, log, attempts, rateLimiter } = deps;
  const now = deps.now ?? Date.now;
  const store = createDeliveryStore(deps.pool);
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  async function waitForSendSlot(endpointId: string, perSecond: number): Promise<void> {
    for (;;) {
      const slot = await rateLimiter.take(endpointId, perSecond);
      if (slot.reserved) return sleep(slot.waitMs);
      await sleep(slot.waitMs);
    }
  }

  async function run(job: Job): Promise<string> {
    const id = jobRowId('recovery', job.data);
    const claimed = await db.webhookRecovery.updateMany({ where: { id, status: { in: ['queued', 'running'] } }, data: { status: 'running' } });
    if (claimed.count === 0) return 'finished already';
    const r = await db.webhookRecovery.findUniqueOrThrow({ where: { id } });
    const task = log.child({ recoveryId: id, applicationId: r.applicationId, endpointId: r.endpointId });
    let total = r.total;
    if (total === null) {
      total = await db.webhookDelivery.count({ where: { applicationId: r.applicationId, endpointId: r.endpointId, status: 'failed', createdAt: { gte: r.since, lt: r.until } } });
      await db.webhookRecovery.update({ where: { id }, data: { total } });
      task.info({ total }, 'webhook recovery started');
    }

    let after = r.afterCreatedAt && r.afterId ? { createdAt: r.afterCreatedAt, id: r.afterId } : undefined;
    let done = r.done;
    let failed = r.failed;
    let unsaved = 0;
    let failuresInARow = 0;
    const save = (extra: Record<string, unknown> = {}) =>
      db.webhookRecovery.update({ where: { id }, data: { done, failed, afterCreatedAt: after?.createdAt ?? null, afterId: after?.id ?? null, ...extra } });
    const finish = async (status: 'done' | 'failed', error: string | null) => {
      await save({ status, error, finishedAt: new Date(now()) });
      task.info({ status, done, failed, error }, 'webhook recovery finished');
      return `${status}: ${done} delivered, ${failed} failed`;
    };

    for (;;) {
      // Failed deliveries of the window after the last one handled, in event order. Those that
      // fail again during this task are behind `after`, so none is sent twice by one task.
      const batch = await db.webhookDelivery.findMany({
        where: {
          applicationId: r.applicationId,
          endpointId: r.endpointId,
          status: 'failed',
          createdAt: { gte: r.since, lt: r.until },
          ...(after ? { OR: [{ createdAt: { gt: after.createdAt } }, { createdAt: after.createdAt, id: { gt: after.id } }] } : {}),
        },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: BATCH,
        select: { id: true, createdAt: true },
      });
      if (batch.length === 0) return finish('done', null);

      // The batch is read in one statement; attempts are recorded while the next ones go out
      // (sends stay one at a time, in order), and all recorded before the place is saved.
      const loaded = await Promise.all(batch.map((b) => store.load(b.id)));
      const recording: Promise<unknown>[] = [];
      const saveRecorded = async (extra?: Record<string, unknown>) => {
        await Promise.all(recording.splice(0));
        await save(extra);
      };
      for (const [i, next] of batch.entries()) {
        if (deps.isShuttingDown()) {
          await saveRecorded();
          await job.moveToDelayed(now() + 1_000, job.token);
          throw new DelayedError();
        }
        const d = loaded[i];
        if (d && d.status === 'failed') {
          if (!d.enabled) {
            await Promise.all(recording.splice(0));
            return finish('failed', 'the endpoint was disabled during the recovery; enable it and recover again');
          }
          if (d.rateLimit !== null) await waitForSendSlot(d.endpointId, d.rateLimit);
          const { startedAt, result } = await attempts.send(d, attempts.signersFor(d));
          const ok = result.outcome === 'success';
          recording.push(store.record({ id: d.id, startedAt, result, status: ok ? 'delivered' : 'failed', nextAttemptAt: null, at: new Date(now()) }));
          deps.onResend?.(ok ? 'delivered' : 'failed');
          if (ok) {
            done++;
            failuresInARow = 0;
            if (d.failingSince !== null) recording.push(db.webhookEndpoint.updateMany({ where: { id: d.endpointId, failingSince: { not: null } }, data: { failingSince: null } }));
          } else {
            failed++;
            if (++failuresInARow >= MAX_CONSECUTIVE_FAILURES) {
              after = next;
              await Promise.all(recording.splice(0));
              return finish('failed', `stopped after ${MAX_CONSECUTIVE_FAILURES} failures in a row; last: ${result.error ?? result.outcome}`);
            }
          }
        }
        after = next;
        if (++unsaved >= SAVE_EVERY) {
          unsaved = 0;
          await saveRecorded();
        }
      }
      await Promise.all(recording.splice(0));
    }
  }

  return { queue: JOBS.recovery.queue, process: run, options: { concurrency: 5 } };
}
