/** The email domain's part of the worker role: the delivery processor and its sweeps. */
import type { Container } from '../container';
import { createIdempotency } from '../http/idempotency';
import { QUEUE_NAMES } from '../queue';
import type { QueueProcessor, Sweep } from '../worker/processors';
import { createEmailDeliveryMetrics, registerQueueMetrics } from './metrics';
import { createEmailProcessor } from './processor';
import { createEmailSweeps } from './sweeps';
import { createSmtpTransport } from './transport';

export function emailQueueProcessor(c: Container): QueueProcessor {
  const transport = createSmtpTransport({ smtpUrl: c.config.smtpUrl, smtpTimeoutMs: c.config.smtpTimeoutMs, smtpPoolSize: c.config.smtpPoolSize });
  registerQueueMetrics(c.metrics.registry, c.queues);
  const processor = createEmailProcessor({
    db: c.db,
    queues: c.queues,
    log: c.log.child({ queue: QUEUE_NAMES.email }),
    transport,
    metrics: createEmailDeliveryMetrics(c.metrics.registry),
    leaseMs: c.config.jobLockMs,
    maxAttempts: c.config.email.maxAttempts,
  });
  return {
    queue: QUEUE_NAMES.email,
    process: processor.process,
    // Jobs of a worker that died are handed out again once their lock expires; look that often.
    options: { stalledInterval: Math.min(30_000, c.config.jobLockMs) },
    close: async () => transport.close(),
  };
}

export function emailSweeps(c: Container): Sweep[] {
  const idempotency = createIdempotency({ db: c.db });
  return [
    ...createEmailSweeps({
      db: c.db,
      queues: c.queues,
      redis: c.redis,
      settings: c.config.email,
      graceMs: Math.max(1_000, c.config.sweepIntervalMs),
      leaseMs: c.config.jobLockMs,
    }),
    { name: 'idempotency-expired', run: () => idempotency.purgeExpired() },
  ];
}
