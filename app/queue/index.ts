/**
 * Queues and their Redis connections, for producers (api, sweeper: producer.ts) and processors
 * (worker). What each job kind is (name, payload, options) is the contract in jobs.ts. Job ids
 * are the database row ids (outbox rule, DESIGN.md section 2): BullMQ ignores an add whose jobId
 * already exists.
 */
import { Queue, type ConnectionOptions, type QueueOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { JOB_KINDS, JOBS, type JobData, type JobKind } from './jobs';

export { JOBS, JOB_KINDS, EMAIL_BATCH_MAX, emailBatchJob, emailFollowOnJob, emailRetryDelayMs, jobFor, jobRowId, type JobData, type JobKind, type JobSettings, type QueueName } from './jobs';

/** Queue names by kind (tests and benchmarks name queues this way). */
export const QUEUE_NAMES = { email: JOBS.email.queue, emailBatch: JOBS.emailBatch.queue, webhook: JOBS.webhook.queue, recovery: JOBS.recovery.queue } as const;

/** Completed and failed jobs are kept briefly for inspection; Postgres keeps the history. */
export const DEFAULT_JOB_OPTIONS = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 24 * 3600, count: 10_000 },
} satisfies QueueOptions['defaultJobOptions'];

function baseRedisOptions(redisUrl: string): RedisOptions {
  const u = new URL(redisUrl);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    connectTimeout: 5_000,
  };
}

/**
 * Producer side (api, sweeper): fail fast when Redis is down so a request is never held up by
 * the queue; the outbox sweeper enqueues later (BullMQ production guide: "Queue" connections).
 */
export function producerConnection(redisUrl: string): Redis {
  const redis = new Redis({
    ...baseRedisOptions(redisUrl),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  redis.on('error', () => undefined); // reported through health checks, not as crashes
  return redis;
}

/**
 * Worker side: keep retrying forever with a capped backoff (BullMQ requires
 * maxRetriesPerRequest: null for blocking connections).
 */
export function workerConnectionOptions(redisUrl: string): ConnectionOptions {
  return {
    ...baseRedisOptions(redisUrl),
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (times: number) => Math.max(Math.min(Math.exp(times), 20_000), 1_000),
  };
}

/** One BullMQ queue per job kind (producer side), closed together. */
export type Queues = { [K in JobKind]: Queue<JobData<K>> } & { close(): Promise<void> };

export function createQueues(connection: Redis, prefix: string): Queues {
  const opts: QueueOptions = { connection, prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS };
  const queues = Object.fromEntries(
    JOB_KINDS.map((kind) => {
      const queue = new Queue(JOBS[kind].queue, opts);
      queue.on('error', () => undefined); // reported through health checks, not as crashes
      return [kind, queue];
    }),
  ) as { [K in JobKind]: Queue<JobData<K>> };
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= Promise.all(JOB_KINDS.map((k) => queues[k].close())).then(() => undefined));
  return { ...queues, close };
}
