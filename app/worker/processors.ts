/**
 * What the worker runs: one BullMQ processor per queue and the periodic sweeps (outbox
 * re-enqueue, scheduled sends). Each domain contributes its own; one line per domain.
 */
import type { Job, WorkerOptions } from 'bullmq';
import type { Container } from '../container';
import { emailQueueProcessor, emailSweeps } from '../email/worker';
import type { QUEUE_NAMES } from '../queue';
import { webhookQueueProcessor, webhookSweeps } from '../webhooks/worker';

export interface QueueProcessor {
  queue: (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
  process(job: Job): Promise<unknown>;
  /** Overrides of the worker defaults (concurrency, limiter, backoff strategy, ...). */
  options?: Partial<WorkerOptions>;
  /** Called once when the worker closes, after the queue worker stopped (e.g. SMTP pools). */
  close?(): Promise<void>;
}

export interface Sweep {
  name: string;
  /** Returns how many rows it acted on (for logs and metrics). */
  run(): Promise<number>;
}

export function buildProcessors(c: Container): QueueProcessor[] {
  return [emailQueueProcessor(c), webhookQueueProcessor(c)];
}

export function buildSweeps(c: Container): Sweep[] {
  return [...emailSweeps(c), ...webhookSweeps(c)];
}
