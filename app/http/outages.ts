/**
 * A store that is down is a 503, never a 500. A request failing because PostgreSQL or Redis
 * cannot serve it (shared/db-errors.ts decides) is answered 503 problem+json naming the
 * dependency, with Retry-After; nothing was accepted, so the client retries safely.
 *
 * Logging is once per outage window, not per request (at 85 requests/s a restart would log
 * hundreds of lines): the first refusal logs a warning; the window closes at the next /v1
 * success (every /v1 route reads PostgreSQL), logged with how long it lasted and how many
 * requests were refused. A new window warns again only 30 s after the last warning, so a
 * flapping store cannot flood the log either. Metric: easeemail_dependency_unavailable_total.
 */
import type { Context, Next } from 'koa';
import { Counter, type Registry } from 'prom-client';
import { ServiceUnavailableError } from '../errors';
import type { Logger } from '../log';
import { unavailableDependency, type Dependency } from '../shared/db-errors';

/** Long enough for a PostgreSQL restart or failover to finish in most cases. */
export const OUTAGE_RETRY_AFTER_SECONDS = 5;
const MIN_WARNING_INTERVAL_MS = 30_000;

interface Window {
  since: number;
  refused: number;
}

export function dependencyOutages(deps: { log: Logger; registry: Registry }) {
  const refusals = new Counter({
    name: 'easeemail_dependency_unavailable_total',
    help: 'Requests answered 503 because a dependency (PostgreSQL, Redis) could not serve them',
    labelNames: ['dependency'] as const,
    registers: [deps.registry],
  });
  const open = new Map<Dependency, Window>();
  const lastWarning = new Map<Dependency, number>();

  function refused(dependency: Dependency, err: unknown): void {
    refusals.inc({ dependency });
    const window = open.get(dependency);
    if (window) {
      window.refused++;
      return;
    }
    open.set(dependency, { since: Date.now(), refused: 1 });
    if (Date.now() - (lastWarning.get(dependency) ?? 0) < MIN_WARNING_INTERVAL_MS) return;
    lastWarning.set(dependency, Date.now());
    const reason = String((err as Error)?.message ?? err).trim().split('\n').pop()?.slice(0, 200);
    deps.log.warn({ dependency, reason }, `${dependency} is unavailable: answering 503 until it is back (logged once per outage)`);
  }

  function succeeded(): void {
    for (const [dependency, window] of open) {
      open.delete(dependency);
      deps.log.info({ dependency, seconds: Math.round((Date.now() - window.since) / 1000), refused: window.refused }, `${dependency} is serving again`);
    }
  }

  return async function outages(ctx: Context, next: Next) {
    try {
      await next();
    } catch (err) {
      const dependency = unavailableDependency(err);
      if (!dependency) throw err;
      refused(dependency, err);
      throw new ServiceUnavailableError(`${dependency} is unavailable; the request was not completed, retry in a few seconds`, OUTAGE_RETRY_AFTER_SECONDS);
    }
    if (open.size > 0 && ctx.status < 400 && ctx.path.startsWith('/v1/')) succeeded();
  };
}
