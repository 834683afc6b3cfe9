/**
 * The queue contract: names, job payloads and Redis connection options, imported by both the
 * producers (api, sweeper) and the processors (worker). Job ids are the database row ids
 * (outbox rule, DESIGN.md section 2): BullMQ ignores an add whose jobId already exists.
 */
import { Queue, type ConnectionOptions, type QueueOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';

export const QUEUE_NAMES = {
  email: 'email-delivery',
  webhook: 'webhook-delivery',
} as const;

export const emailJobSchema = z.object({ emailId: z.string().uuid() });
export type EmailJob = z.infer<typeof emailJobSchema>;

export const webhookJobSchema = z.object({ deliveryId: z.string().uuid() });
export type WebhookJob = z.infer<typeof webhookJobSchema>;

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

export interface Queues {
  email: Queue<EmailJob>;
  webhook: Queue<WebhookJob>;
  close(): Promise<void>;
}

export function createQueues(connection: Redis, prefix: string): Queues {
  const opts: QueueOptions = { connection, prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS };
  const email = new Queue<EmailJob>(QUEUE_NAMES.email, opts);
  const webhook = new Queue<WebhookJob>(QUEUE_NAMES.webhook, opts);
  email.on('error', () => undefined);
  webhook.on('error', () => undefined);
  let closing: Promise<void> | undefined;
  return {
    email,
    webhook,
    close: () => (closing ??= Promise.all([email.close(), webhook.close()]).then(() => undefined)),
  };
}
