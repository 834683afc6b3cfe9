/**
 * The one way jobs are put on queues (outbox rule, DESIGN.md section 2): the row is committed
 * first, then its job is added with jobId = row id.
 *
 * - `enqueue` is best effort and never rejects. Adds of concurrent callers go to Redis together in
 *   one addBulk per kind (shared/coalesce.ts), so a busy api makes one round trip for many
 *   requests; an add that does not answer within 2 s is given up, so requests never hang on
 *   Redis. A failure is logged (at most every 10 s per kind) and left to the sweeps.
 * - `enqueueDetached` is the request path's: the answer depends only on the commit (the sweeps
 *   add what an add missed), so the request does not wait for Redis either; a POST /v1/events or
 *   /v1/emails at 200/s had a Redis round trip in series before its 202. The add runs on, and only
 *   when more than MAX_DETACHED_JOBS are still unconfirmed does the caller wait for its own add,
 *   so a slow Redis slows the api down instead of piling up ids in its memory. `drain` waits for
 *   the adds still running (shutdown: after the server stops taking requests, before Redis closes).
 * - `ensureJobs` is the repair path (sweeps, manual retry): adds the missing jobs and replaces
 *   finished ones (a kept completed or failed job would make BullMQ ignore the add). It rejects
 *   on Redis errors, so the sweep reports and retries.
 */
import type { Job, JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log';
import { createCoalescer } from '../shared/coalesce';
import { withTimeout } from '../shared/timeout';
import type { Queues } from './index';
import { JOB_KINDS, jobFor, type JobKind, type JobSettings, type RowJobKind } from './jobs';

/** A job as BullMQ's addBulk takes it, built by the contract (jobs.ts: jobFor, emailBatchJob, emailFollowOnJob). */
export interface QueueJob {
  name: string;
  data: Record<string, unknown>;
  opts: JobsOptions & { jobId: string };
}

/** An add that does not answer within this long is left to the sweeper (the add itself runs on). */
const ENQUEUE_TIMEOUT_MS = 2_000;
const MAX_ADDS_IN_FLIGHT = 2;
const MAX_JOBS_PER_ADD = 1_000;
const FAILURE_LOG_INTERVAL_MS = 10_000;
/** Jobs of detached adds not yet settled, above which a caller waits for its own add (backpressure). */
export const MAX_DETACHED_JOBS = 5_000;

export interface JobProducer {
  /** Resolves true when the jobs are in Redis, false when not (a sweep will add them). Never rejects. */
  enqueue(kind: RowJobKind, ids: string[], opts?: { delayMs?: number }): Promise<boolean>;
  /** The same add, not awaited: resolves at once, or when it settles if the detached backlog is over its bound. Never rejects. */
  enqueueDetached(kind: RowJobKind, ids: string[], opts?: { delayMs?: number }): Promise<void>;
  /** enqueue and enqueueDetached for jobs built otherwise than from a row id (a batch, a follow-on job). */
  add(kind: JobKind, jobs: QueueJob[]): Promise<boolean>;
  addDetached(kind: JobKind, jobs: QueueJob[]): Promise<void>;
  /** Resolves when every detached add started so far has settled. */
  drain(): Promise<void>;
  /** Adds the jobs that are missing or finished; returns how many it added. */
  ensureJobs(kind: RowJobKind, ids: string[]): Promise<number>;
  /** Of these job ids, those whose job is in Redis and not finished (waiting, delayed, active). */
  unfinished(kind: JobKind, ids: string[]): Promise<Set<string>>;
  /** The job of row `id` when it exists (its state can be read and it can be promoted). */
  find(kind: JobKind, id: string): Promise<Job | undefined>;
  /** Best effort: removes a job no longer needed (the processor would skip it anyway). */
  discard(kind: JobKind, id: string): Promise<void>;
}

export function createJobProducer(deps: {
  queues: Queues;
  redis: Redis;
  settings: JobSettings;
  log: Logger;
  /** How long a caller of enqueue waits for an add before giving it to the sweeper; ENQUEUE_TIMEOUT_MS unless a test needs another. */
  enqueueTimeoutMs?: number;
}): JobProducer {
  const { queues, redis, settings, log, enqueueTimeoutMs = ENQUEUE_TIMEOUT_MS } = deps;
  const lastFailureLog = new Map<JobKind, number>();
  // Payloads are built by jobFor from the contract, so the queue's own data type adds nothing here.
  const queueOf = (kind: JobKind) => queues[kind] as unknown as Queue;

  const adders = Object.fromEntries(
    JOB_KINDS.map((kind) => [
      kind,
      createCoalescer<QueueJob>({
        maxInFlight: MAX_ADDS_IN_FLIGHT,
        maxItems: MAX_JOBS_PER_ADD,
        async run(jobs) {
          await withTimeout(queueOf(kind).addBulk(jobs), enqueueTimeoutMs, 'Redis');
        },
      }),
    ]),
  ) as Record<JobKind, (jobs: QueueJob[]) => Promise<void>>;

  function enqueue(kind: RowJobKind, ids: string[], opts: { delayMs?: number } = {}): Promise<boolean> {
    return add(kind, ids.map((id) => jobFor(kind, id, settings, opts.delayMs)));
  }

  function add(kind: JobKind, jobs: QueueJob[]): Promise<boolean> {
    if (jobs.length === 0) return Promise.resolve(true);
    return adders[kind](jobs).then(
      () => true,
      (err: unknown) => {
        const now = Date.now();
        if (now - (lastFailureLog.get(kind) ?? 0) > FAILURE_LOG_INTERVAL_MS) {
          lastFailureLog.set(kind, now);
          log.warn({ err, kind, jobs: jobs.length }, 'could not enqueue jobs; the sweeper will enqueue them');
        }
        return false;
      },
    );
  }

  const detached = new Set<Promise<boolean>>();
  let detachedJobs = 0;

  function enqueueDetached(kind: RowJobKind, ids: string[], opts: { delayMs?: number } = {}): Promise<void> {
    return addDetached(kind, ids.map((id) => jobFor(kind, id, settings, opts.delayMs)));
  }

  function addDetached(kind: JobKind, jobs: QueueJob[]): Promise<void> {
    const adding = add(kind, jobs);
    detached.add(adding);
    detachedJobs += jobs.length;
    void adding.finally(() => {
      detached.delete(adding);
      detachedJobs -= jobs.length;
    });
    return detachedJobs > MAX_DETACHED_JOBS ? adding.then(() => undefined) : Promise.resolve();
  }

  async function drain(): Promise<void> {
    await Promise.all(detached);
  }

  /** Whether each job exists and whether it finished: two fields a job, one round trip for all. */
  async function jobStates(queue: Queue, ids: string[]): Promise<('missing' | 'finished' | 'unfinished')[]> {
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hmget(queue.toKey(id), 'timestamp', 'finishedOn');
    const results = (await pipeline.exec()) ?? [];
    return ids.map((_, i) => {
      const [err, fields] = results[i] as [Error | null, (string | null)[]];
      if (err) throw err;
      const [created, finishedOn] = fields;
      return created === null ? 'missing' : finishedOn !== null ? 'finished' : 'unfinished';
    });
  }

  async function ensureJobs(kind: RowJobKind, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const queue = queueOf(kind);
    // A backlog of waiting jobs thus costs little to look at.
    const states = await jobStates(queue, ids);
    const missing: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (states[i] === 'missing') missing.push(ids[i]);
      else if (states[i] === 'finished' && (await queue.remove(ids[i])) === 1) missing.push(ids[i]);
    }
    if (missing.length > 0) await queue.addBulk(missing.map((id) => jobFor(kind, id, settings)));
    return missing.length;
  }

  async function unfinished(kind: JobKind, ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const states = await jobStates(queueOf(kind), ids);
    return new Set(ids.filter((_, i) => states[i] === 'unfinished'));
  }

  async function find(kind: JobKind, id: string): Promise<Job | undefined> {
    return (await queueOf(kind).getJob(id)) ?? undefined;
  }

  async function discard(kind: JobKind, id: string): Promise<void> {
    await queueOf(kind).remove(id).catch(() => undefined);
  }

  return { enqueue, enqueueDetached, add, addDetached, drain, ensureJobs, unfinished, find, discard };
}
