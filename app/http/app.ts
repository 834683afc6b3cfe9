/**
 * The Koa application: request context, problem+json errors, body parsing with limits, health,
 * metrics, and the /v1 routers that the domain modules contribute (see http/routes.ts).
 */
import type Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../log';
import { jsonBody } from './body';
import { healthRouter, type ReadinessSources } from './health';
import { metricsRouter, type Metrics } from './metrics';
import { unmatchedMethods } from './methods';
import { dependencyOutages } from './outages';
import { registerReadinessMetrics } from './readiness-metrics';
import { problemMiddleware } from './problem';
import { requestContext } from './request-context';

export interface HttpAppDeps extends ReadinessSources {
  log: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** Routers mounted after the shared middleware, in order. */
  routers: Router[];
}

export function createHttpApp(deps: HttpAppDeps): Koa {
  const app = new Koa({ proxy: true });
  app.silent = true; // errors are logged once, by the problem middleware
  app.use(requestContext(deps.log, deps.metrics));
  app.use(problemMiddleware());
  app.use(dependencyOutages({ log: deps.log, registry: deps.metrics.registry }));
  app.use(jsonBody(deps.bodyLimitBytes));

  registerReadinessMetrics(deps.metrics.registry, deps);
  const routers = [healthRouter(deps), metricsRouter(deps.metrics.registry), ...deps.routers];
  for (const router of routers) app.use(router.routes());
  app.use(unmatchedMethods(routers));
  return app;
}
