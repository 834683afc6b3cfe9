/** The `api` role: the HTTP API on PORT, until SIGTERM. */
import type http from 'node:http';
import type { Config } from './config';
import { createContainer } from './container';
import { createHttpApp } from './http/app';
import { buildOpenApiDocument, openApiRouter } from './http/openapi';
import { buildApiModules } from './http/routes';
import { closeServer, listen } from './http/server';
import { createLifecycle, type Lifecycle } from './lifecycle';
import type { Logger } from './log';

export interface RunningApi {
  server: http.Server;
  port: number;
  lifecycle: Lifecycle;
}

export async function startApi(config: Config, log: Logger): Promise<RunningApi> {
  const lifecycle = createLifecycle(log, config.shutdownTimeoutMs);
  const c = createContainer({ role: 'api', config, log, lifecycle });
  if (config.bootstrapApiKey) {
    await c.apiKeys.ensureBootstrapKey(config.bootstrapApiKey);
    log.info('bootstrap API key ensured (from BOOTSTRAP_API_KEY)');
  }
  const modules = buildApiModules(c);
  const app = createHttpApp({
    log,
    metrics: c.metrics,
    db: c.db,
    redis: c.redis,
    isShuttingDown: lifecycle.isShuttingDown,
    bodyLimitBytes: config.bodyLimitBytes,
    routers: [openApiRouter(buildOpenApiDocument(modules.map((m) => m.openapi))), ...modules.map((m) => m.router)],
  });
  const { server, port } = await listen(app, config.port, config.host);
  // Longer than typical load-balancer idle timeouts, so they close first (no reset races).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  // Registered last, so these run first: keep serving with readiness failing until load
  // balancers have noticed, then stop taking requests and let in-flight ones finish.
  lifecycle.onShutdown('http server', () => closeServer(server));
  lifecycle.onShutdown('drain delay', () => new Promise((r) => setTimeout(r, config.shutdownDrainDelayMs)));
  log.info({ port }, 'api listening');
  return { server, port, lifecycle };
}
