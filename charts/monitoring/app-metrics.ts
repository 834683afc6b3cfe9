/**
 * The metric names the app exports, taken from the app's own registrations (not a hand-kept
 * list), so a rule or dashboard panel that names a metric the app does not export fails synth.
 * Each factory is called on a scratch registry; nothing is collected, so no connection is used.
 */
import type { Redis } from 'ioredis';
import type { Db } from '../../app/db/client';
import { createEmailDeliveryMetrics } from '../../app/email/metrics';
import { createMetrics } from '../../app/http/metrics';
import { registerReadinessMetrics } from '../../app/http/readiness-metrics';
import { JOB_KINDS, JOBS } from '../../app/queue';
import { registerBacklogGauges } from '../../app/queue/metrics';
import { createWebhookMetrics } from '../../app/webhooks/metrics';

/** Series names a metric type yields in the exposition format. */
function seriesNames(name: string, type: string): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

let cached: ReadonlySet<string> | undefined;

/** Every series name an api or worker process can expose (process metrics included). */
export function appMetricNames(): ReadonlySet<string> {
  if (cached) return cached;
  const { registry } = createMetrics('catalogue');
  // No connection is ever made: nothing here is collected (a live one would keep synth running).
  const unused = undefined as unknown as Redis;
  registerBacklogGauges(registry, unused, JOB_KINDS.map((kind) => ({ name: JOBS[kind].queue, keys: {} as never, toKey: (id: string) => id })));
  createEmailDeliveryMetrics(registry);
  createWebhookMetrics(registry, undefined as unknown as Db);
  registerReadinessMetrics(registry, { db: undefined as unknown as Db, redis: unused, isShuttingDown: () => true });
  const names = new Set<string>(['up', 'scrape_duration_seconds', 'ALERTS', 'ALERTS_FOR_STATE']);
  for (const metric of registry.getMetricsAsArray()) {
    const m = metric as unknown as { name: string; type?: string; constructor: { name: string } };
    const type = m.type ?? m.constructor.name.toLowerCase();
    for (const n of seriesNames(m.name, type)) names.add(n);
  }
  registry.clear();
  cached = names;
  return names;
}
