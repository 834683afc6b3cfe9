/**
 * Putting emails on the delivery queue (outbox rule, DESIGN.md section 2): the row is committed
 * first, then a job whose jobId is the email id is added. Adding is best effort: when Redis is
 * down the request still succeeds and the worker's sweeper adds the job later (`ensureJobs`).
 *
 * Adds are coalesced (coalesce.ts): concurrent requests' jobs go to Redis in one addBulk, so a
 * busy api makes one round trip for many requests instead of one each.
 */
import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log';
import type { EmailJob } from '../queue';
import { createCoalescer } from './coalesce';

export interface EmailJobSettings {
  maxAttempts: number;
  retryBaseMs: number;
}

/** Retries (SMTP 4xx, connection errors): exponential from retryBaseMs, each delay jittered to 50-100 %. */
export function emailJobOptions(settings: EmailJobSettings, emailId: string, delayMs = 0): JobsOptions {
  return {
    jobId: emailId,
    attempts: settings.maxAttempts,
    backoff: { type: 'exponential', delay: settings.retryBaseMs, jitter: 0.5 },
    ...(delayMs > 0 ? { delay: delayMs } : {}),
  };
}

export interface EnqueueItem {
  id: string;
  /** For scheduled emails: how long until scheduledAt. */
  delayMs?: number;
}

export interface EmailEnqueuer {
  /** Resolves true when the jobs are in Redis, false when not (the sweeper will add them). Never rejects. */
  enqueue(items: EnqueueItem[]): Promise<boolean>;
}

/** An add that does not answer within this long is left to the sweeper, so requests never hang on Redis. */
const ENQUEUE_TIMEOUT_MS = 2_000;
const MAX_IN_FLIGHT = 2;
const MAX_JOBS_PER_ADD = 1_000;

export function createEmailEnqueuer(deps: { queue: Queue<EmailJob>; settings: EmailJobSettings; log: Logger }): EmailEnqueuer {
  const { queue, settings, log } = deps;
  let lastFailureLog = 0;

  const add = createCoalescer<EnqueueItem>({
    maxInFlight: MAX_IN_FLIGHT,
    maxItems: MAX_JOBS_PER_ADD,
    async run(items) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          queue.addBulk(items.map((i) => ({ name: 'send', data: { emailId: i.id }, opts: emailJobOptions(settings, i.id, i.delayMs) }))),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ENQUEUE_TIMEOUT_MS} ms`)), ENQUEUE_TIMEOUT_MS);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  });

  return {
    enqueue(items) {
      if (items.length === 0) return Promise.resolve(true);
      return add(items).then(
        () => true,
        (err: unknown) => {
          const now = Date.now();
          if (now - lastFailureLog > 10_000) {
            lastFailureLog = now;
            log.warn({ err, emails: items.length }, 'could not enqueue emails; the sweeper will enqueue them');
          }
          return false;
        },
      );
    },
  };
}

/**
 * Makes sure each email id has a live job: adds missing ones, and replaces finished ones (a job
 * kept after completing or failing would make BullMQ ignore the add). Returns how many it added.
 * Used by the sweeper for rows that should be on the queue.
 */
export async function ensureJobs(deps: { queue: Queue<EmailJob>; redis: Redis; settings: EmailJobSettings }, ids: string[]): Promise<number> {
  const { queue, redis, settings } = deps;
  if (ids.length === 0) return 0;
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hmget(queue.toKey(id), 'timestamp', 'finishedOn');
  const results = (await pipeline.exec()) ?? [];
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const [err, fields] = results[i] as [Error | null, (string | null)[]];
    if (err) throw err;
    const [created, finishedOn] = fields;
    if (created === null) missing.push(ids[i]);
    else if (finishedOn !== null && (await queue.remove(ids[i])) === 1) missing.push(ids[i]);
  }
  if (missing.length > 0) {
    await queue.addBulk(missing.map((id) => ({ name: 'send', data: { emailId: id }, opts: emailJobOptions(settings, id) })));
  }
  return missing.length;
}
