/**
 * Backlog gauges of every queue, read from Redis when Prometheus scrapes (DESIGN.md section 12):
 *
 *   easeemail_queue_jobs{queue, state}             ready | delayed | active | failed
 *   easeemail_queue_oldest_ready_seconds{queue}    age of the oldest job ready to run, 0 when none
 *   easeemail_queue_ready_items{queue}             ready jobs weighted by the items they carry
 *                                                  (jobs.ts itemsPerReadyJob): what the worker scales on
 *
 * `ready` is what a worker would take now: the wait list, paused and prioritized jobs, and delayed
 * jobs already due (BullMQ promotes due jobs only when a worker asks for work, so with every worker
 * down they stay in the delayed set); `delayed` is what is not due yet. Ready items per replica is
 * what the worker scales on, and the oldest ready age what the backlog-aging alert fires on.
 *
 * Cost per queue and scrape: one MULTI of LLEN/ZCARD/ZCOUNT/LINDEX and one ZRANGEBYSCORE LIMIT 1
 * (O(log n)), then one HMGET of the oldest waiting job: a handful of commands whatever the backlog,
 * never a scan. The keys are BullMQ's own (`queue.keys`): `wait` (LPUSH in, RPOPLPUSH out, so the
 * tail is the oldest), `delayed` (score = due ms × 0x1000 + sequence), and the job hash
 * (`queue.toKey(id)`) with `timestamp`, `processedOn` and the JSON `opts`.
 *
 * Both the api and the worker report these gauges (registered once, in their roots), so they
 * exist while either role is up; every query that reads them aggregates with `max by (queue)`, so
 * replicas never multiply them.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { withTimeout } from '../shared/timeout';
import type { Queues } from './index';
import { itemsPerReadyJob, JOB_KINDS } from './jobs';

export const QUEUE_JOBS_METRIC = 'easeemail_queue_jobs';
export const QUEUE_OLDEST_READY_METRIC = 'easeemail_queue_oldest_ready_seconds';
export const QUEUE_READY_ITEMS_METRIC = 'easeemail_queue_ready_items';
export const QUEUE_JOB_STATES = ['ready', 'delayed', 'active', 'failed'] as const;
export type QueueJobState = (typeof QUEUE_JOB_STATES)[number];

/** A scrape must not hang on an unreachable Redis (Prometheus' default scrape timeout is 10 s). */
const SCRAPE_TIMEOUT_MS = 1_000;
/** Low bits of a delayed score order jobs within one millisecond (BullMQ's getDelayedScore). */
const DELAYED_SCORE_FACTOR = 0x1000;

export interface QueueBacklog {
  ready: number;
  delayed: number;
  active: number;
  failed: number;
  /** Seconds since the oldest ready job became ready; 0 when nothing is ready. */
  oldestReadySeconds: number;
}

/**
 * When the job at the tail of the wait list became ready. BullMQ keeps no promotion time: a job
 * that was delayed (a retry, a parked webhook) has `delay` reset to 0 when promoted. So:
 * - never attempted: added at `timestamp`, due `opts.delay` later (scheduled emails): exact;
 * - attempted before: ready no earlier than its last attempt began (`processedOn`), so the age
 *   can overstate by that retry's wait. Such a job reaches the tail only after everything ahead of
 *   it ran and leaves it with the next free worker, so the overstatement is brief.
 */
function readySince(fields: (string | null)[]): number | undefined {
  const [timestamp, processedOn, opts] = fields;
  if (timestamp === null) return undefined; // removed between the two round trips
  let delay = 0;
  try {
    delay = Number((JSON.parse(opts ?? '{}') as { delay?: number }).delay ?? 0) || 0;
  } catch {
    // unreadable opts: count from the add
  }
  return Math.max(Number(timestamp) + delay, processedOn === null ? 0 : Number(processedOn));
}

/** The Redis keys of one queue: BullMQ's own key map (`<prefix>:<queue>:<type>`). */
export type QueueKeys = Pick<Queue, 'keys' | 'toKey'>;

/** Reads one queue's backlog with a bounded number of commands (see the module comment). */
export async function readQueueBacklog(redis: Redis, queue: QueueKeys, nowMs = Date.now()): Promise<QueueBacklog> {
  const { wait, paused, prioritized, delayed, active, failed } = queue.keys;
  const dueMaxScore = (nowMs + 1) * DELAYED_SCORE_FACTOR - 1;
  const replies = await redis
    .multi()
    .llen(wait)
    .llen(paused)
    .zcard(prioritized)
    .zcount(delayed, 0, dueMaxScore)
    .zcard(delayed)
    .llen(active)
    .zcard(failed)
    .lindex(wait, -1)
    .lindex(paused, -1)
    .zrangebyscore(delayed, 0, dueMaxScore, 'WITHSCORES', 'LIMIT', 0, 1)
    .exec();
  if (!replies) throw new Error('Redis transaction aborted');
  const values = replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  const [waiting, pausedCount, prioritizedCount, due, delayedAll, activeCount, failedCount] = values.slice(0, 7).map(Number);
  const tails = [values[7], values[8]].filter((id): id is string => typeof id === 'string' && !id.startsWith('0:'));
  const firstDue = values[9] as string[];

  const since: number[] = [];
  if (firstDue.length === 2) since.push(Math.floor(Number(firstDue[1]) / DELAYED_SCORE_FACTOR));
  for (const id of tails) {
    const t = readySince(await redis.hmget(queue.toKey(id), 'timestamp', 'processedOn', 'opts'));
    if (t !== undefined) since.push(t);
  }
  const oldest = since.length ? Math.min(...since) : undefined;
  return {
    ready: waiting + pausedCount + prioritizedCount + due,
    delayed: delayedAll - due,
    active: activeCount,
    failed: failedCount,
    oldestReadySeconds: oldest === undefined ? 0 : Math.max(0, (nowMs - oldest) / 1000),
  };
}

/**
 * Registers the gauges for every queue of the contract (JOB_KINDS). `redis` should fail fast (the
 * producer connection), so a Redis outage cannot stall a scrape.
 */
export function registerQueueMetrics(registry: Registry, redis: Redis, queues: Queues): void {
  registerBacklogGauges(registry, redis, JOB_KINDS.map((kind) => queues[kind]));
}

/** The gauges over any set of queues (tests use their own). */
export function registerBacklogGauges(registry: Registry, redis: Redis, queues: readonly (QueueKeys & { name: string })[]): void {
  if (registry.getSingleMetric(QUEUE_JOBS_METRIC)) return;
  let reading: Promise<void> | undefined;
  /** The gauges' collect() share one read per scrape: prom-client collects them concurrently. */
  const readAll = (): Promise<void> =>
    (reading ??= Promise.all(queues.map((queue) => collectQueue(queue))).then(() => {
      reading = undefined;
    }));
  const jobs = new Gauge({
    name: QUEUE_JOBS_METRIC,
    help: 'Jobs per queue: ready (waiting, and delayed jobs already due), delayed (not yet due), active, failed. Queue-wide: aggregate with max by (queue)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    collect: readAll,
  });
  const oldest = new Gauge({
    name: QUEUE_OLDEST_READY_METRIC,
    help: 'Age in seconds of the oldest job ready to run, 0 when none. Queue-wide: aggregate with max by (queue)',
    labelNames: ['queue'] as const,
    registers: [registry],
    collect: readAll,
  });
  const readyItems = new Gauge({
    name: QUEUE_READY_ITEMS_METRIC,
    help: 'Ready jobs weighted by the items they carry: 1 each, a batch of emails as a full batch (an upper bound). What the worker scales on. Queue-wide: aggregate with max by (queue)',
    labelNames: ['queue'] as const,
    registers: [registry],
    collect: readAll,
  });
  async function collectQueue(q: QueueKeys & { name: string }): Promise<void> {
    const queue = q.name;
    try {
      const b = await withTimeout(readQueueBacklog(redis, q), SCRAPE_TIMEOUT_MS, 'Redis');
      for (const state of QUEUE_JOB_STATES) jobs.set({ queue, state }, b[state]);
      oldest.set({ queue }, b.oldestReadySeconds);
      readyItems.set({ queue }, b.ready * itemsPerReadyJob(queue));
    } catch {
      // Redis unreachable: no series this scrape (absent, not a false 0); /health/ready says why.
      for (const state of QUEUE_JOB_STATES) jobs.remove({ queue, state });
      oldest.remove({ queue });
      readyItems.remove({ queue });
    }
  }
}
