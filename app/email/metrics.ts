/**
 * Prometheus metrics of the delivery pipeline, on the process registry (container.metrics):
 * - easeemail_queue_jobs{queue,state}: BullMQ job counts, read from Redis on each scrape (api and worker);
 * - easeemail_email_deliveries_total{outcome}: SMTP attempts by outcome (worker);
 * - easeemail_email_accept_to_delivery_seconds: accepted (or due, when scheduled) → SMTP server took it (worker).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Queues } from '../queue';

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** A scrape must not hang on an unreachable Redis. */
const SCRAPE_TIMEOUT_MS = 1_000;

export function registerQueueMetrics(registry: Registry, queues: Queues): void {
  if (registry.getSingleMetric('easeemail_queue_jobs')) return;
  new Gauge({
    name: 'easeemail_queue_jobs',
    help: 'Jobs in each BullMQ queue by state (read from Redis when scraped)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        [queues.email, queues.webhook].map(async (queue) => {
          let timer: NodeJS.Timeout | undefined;
          try {
            const counts = await Promise.race([
              queue.getJobCounts(...JOB_STATES),
              new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), SCRAPE_TIMEOUT_MS))),
            ]);
            for (const state of JOB_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
          } catch {
            // Redis unreachable: the series are absent for this scrape; /health/ready says why.
          } finally {
            clearTimeout(timer);
          }
        }),
      );
    },
  });
}

export function createEmailDeliveryMetrics(registry: Registry) {
  return {
    deliveries: new Counter({
      name: 'easeemail_email_deliveries_total',
      help: 'SMTP delivery attempts by outcome (sent, retry, failed)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    acceptToDelivery: new Histogram({
      name: 'easeemail_email_accept_to_delivery_seconds',
      help: 'Time from acceptance (or scheduledAt, when later) until the SMTP server accepted the email',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200],
      registers: [registry],
    }),
  };
}

export type EmailDeliveryMetrics = ReturnType<typeof createEmailDeliveryMetrics>;
