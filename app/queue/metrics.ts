/**
 * easeemail_queue_jobs{queue,state}: BullMQ job counts of every queue, read from Redis on each
 * scrape (api and worker register it once, in their roots).
 */
import { Gauge, type Registry } from 'prom-client';
import { withTimeout } from '../shared/timeout';
import type { Queues } from './index';
import { JOB_KINDS } from './jobs';

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** A scrape must not hang on an unreachable Redis. */
const SCRAPE_TIMEOUT_MS = 1_000;

export function registerQueueMetrics(registry: Registry, queues: Queues): void {
  new Gauge({
    name: 'easeemail_queue_jobs',
    help: 'Jobs in each BullMQ queue by state (read from Redis when scraped)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        JOB_KINDS.map(async (kind) => {
          const queue = queues[kind];
          try {
            const counts = await withTimeout(queue.getJobCounts(...JOB_STATES), SCRAPE_TIMEOUT_MS, 'Redis');
            for (const state of JOB_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
          } catch {
            // Redis unreachable: the series are absent for this scrape; /health/ready says why.
          }
        }),
      );
    },
  });
}
