/**
 * What a worker role runs, as the domains provide it: one processor per queue and periodic
 * sweeps (outbox repair, scheduled sends, purges). The worker root (app/worker/index.ts) lists
 * them; app/worker/run.ts turns them into BullMQ workers and a sweep loop.
 */
import type { Job, WorkerOptions } from 'bullmq';
import type { QueueName } from './index';

export interface QueueProcessor {
  queue: QueueName;
  process(job: Job): Promise<unknown>;
  /** Overrides of the worker defaults (concurrency, limiter, backoff strategy, ...). */
  options?: Partial<WorkerOptions>;
}

export interface Sweep {
  name: string;
  /** Returns how many rows it acted on (for logs and metrics). */
  run(): Promise<number>;
}
