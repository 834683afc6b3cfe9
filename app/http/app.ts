/**
 * The Koa application: request context, problem+json errors, body parsing with limits, health,
 * metrics, and the /v1 routers that the domain modules contribute (see http/routes.ts).
 */
import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import Koa from 'koa';
import type { Context, Next } from 'koa';
import { UnsupportedMediaTypeError } from '../errors';
import type { Logger } from '../log';
import { healthRouter, type ReadinessSources } from './health';
import { metricsRouter, type Metrics } from './metrics';
import { problemMiddleware } from './problem';
import { requestContext } from './request-context';

export interface HttpAppDeps extends ReadinessSources {
  log: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** Routers mounted after the shared middleware, in order. */
  routers: Router[];
}

/** Bodies are JSON only: refuse other content types before parsing, with a clear 415. */
function requireJsonBody(ctx: Context, next: Next) {
  const hasBody = ctx.request.length > 0 || ctx.get('transfer-encoding') !== '';
  if (hasBody && ['POST', 'PUT', 'PATCH'].includes(ctx.method) && !ctx.is('application/json', 'application/*+json')) {
    throw new UnsupportedMediaTypeError(`send the body as application/json (got ${ctx.get('content-type') || 'no Content-Type'})`);
  }
  return next();
}

export function createHttpApp(deps: HttpAppDeps): Koa {
  const app = new Koa({ proxy: true });
  app.silent = true; // errors are logged once, by the problem middleware
  app.use(requestContext(deps.log, deps.metrics));
  app.use(problemMiddleware());
  app.use(requireJsonBody);
  app.use(
    bodyParser({
      enableTypes: ['json'],
      extendTypes: { json: ['application/json', 'application/*+json'] },
      jsonLimit: deps.bodyLimitBytes,
      jsonStrict: true,
    }),
  );

  const health = healthRouter(deps);
  app.use(health.routes());
  app.use(metricsRouter(deps.metrics.registry).routes());
  for (const router of deps.routers) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  return app;
}
