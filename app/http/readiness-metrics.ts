/**
 * Readiness as metrics, on the api and the worker:
 *
 *   easeemail_ready                        1 while /health/ready would answer 200, else 0
 *   easeemail_dependency_ready{dependency} postgres | redis: 1 when it answered the readiness check
 *
 * Computed at scrape time by the same checks as /health/ready (SELECT 1, PING, each bounded by
 * HEALTH_CHECK_TIMEOUT_MS), so the alerts see exactly what the kubelet sees, one round trip each.
 */
import { Gauge, type Registry } from 'prom-client';
import { readiness, type ReadinessSources } from './health';

export const READY_METRIC = 'easeemail_ready';
export const DEPENDENCY_READY_METRIC = 'easeemail_dependency_ready';

export function registerReadinessMetrics(registry: Registry, src: ReadinessSources): void {
  if (registry.getSingleMetric(READY_METRIC)) return;
  let checking: Promise<Awaited<ReturnType<typeof readiness>>> | undefined;
  /** Both gauges share one check per scrape (prom-client collects them concurrently). */
  const check = () => (checking ??= readiness(src).finally(() => (checking = undefined)));
  new Gauge({
    name: READY_METRIC,
    help: '1 while this process is ready (PostgreSQL and Redis answer, not shutting down), else 0',
    registers: [registry],
    async collect() {
      this.set((await check()).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: DEPENDENCY_READY_METRIC,
    help: 'Readiness check of each dependency as this process sees it: 1 answered, 0 failed',
    labelNames: ['dependency'] as const,
    registers: [registry],
    async collect() {
      const { body } = await check();
      this.reset();
      // While shutting down nothing is checked ("unknown"): no sample rather than a false 0.
      for (const [dependency, state] of [['postgres', body.database], ['redis', body.redis]] as const) {
        if (state === 'ok' || state === 'error') this.set({ dependency }, state === 'ok' ? 1 : 0);
      }
    },
  });
}
