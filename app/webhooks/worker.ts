/** The webhook domain's part of the worker role: the delivery processor and the outbox sweep. */
import type { Container } from '../container';
import type { QueueProcessor, Sweep } from '../worker/processors';
import { createWebhookProcessor } from './processor';
import { createWebhookSweep } from './sweeper';

export function webhookQueueProcessor(c: Container): QueueProcessor {
  return createWebhookProcessor({ ...c, log: c.log.child({ queue: 'webhook-delivery' }) });
}

export function webhookSweeps(c: Container): Sweep[] {
  // Overdue by one sweep period: the api enqueues right after its commit, and a duplicate add
  // would be ignored anyway (job id = delivery id).
  return [createWebhookSweep({ db: c.db, queues: c.queues, redis: c.redis, graceMs: Math.max(1_000, c.config.sweepIntervalMs) })];
}
