import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../log';
import type { Metrics } from './metrics';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Request id (taken from X-Request-Id when sane), a child logger, an access log line and metrics. */
export function requestContext(log: Logger, metrics: Metrics) {
  return async function context(ctx: Context, next: Next) {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('x-request-id');
    const requestId = CLIENT_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    ctx.state.log = log.child({ requestId });
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      metrics.httpDuration.observe({ method: ctx.method, route: String(route), status: String(ctx.status) }, seconds);
      const line = { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(seconds * 1000 * 10) / 10 };
      if (ctx.status >= 500) ctx.state.log.error(line, 'request failed');
      else if (!ctx.path.startsWith('/health') && ctx.path !== '/metrics') ctx.state.log.debug(line, 'request');
    }
  };
}
