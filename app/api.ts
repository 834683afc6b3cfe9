/**
 * The `api` role's composition root: the HTTP API on PORT, until SIGTERM. Builds every service
 * once from the container's infrastructure and lists the API modules (one line per domain).
 */
import type http from 'node:http';
import { createApplicationService } from './applications';
import { applicationRoutes } from './applications/routes';
import { createApiKeyService } from './auth/api-keys';
import { apiKeyRoutes } from './auth/routes';
import type { Config } from './config';
import { createContainer } from './container';
import { emailRoutes } from './email/routes';
import { createEmailAcceptMetrics } from './email/metrics';
import { createEmailService } from './email/service';
import { EMAIL_ACCEPT_POOL_SIZE } from './email/store';
import { createHttpApp } from './http/app';
import { createRouteGuard } from './http/auth';
import { createIdempotency } from './http/idempotency';
import type { ApiModule } from './http/module';
import { buildOpenApiDocument, openApiRouter } from './http/openapi';
import { createApiRateLimit } from './http/rate-limit';
import { closeServer, listen } from './http/server';
import { createLifecycle, type Lifecycle } from './lifecycle';
import type { Logger } from './log';
import { registerQueueMetrics } from './queue/metrics';
import { createJobProducer } from './queue/producer';
import { createSuppressionService, suppressionRoutes } from './suppressions';
import { templateRoutes } from './templates/routes';
import { createTemplateService } from './templates/service';
import { createEndpointService } from './webhooks/endpoints';
import { createEventService, PUBLISH_POOL_SIZE } from './webhooks/event-service';
import { eventTypeRoutes } from './webhooks/event-type-routes';
import { createEventTypeService } from './webhooks/event-types';
import { webhookListingRoutes } from './webhooks/listing-routes';
import { createWebhookListings } from './webhooks/listings';
import { createRecoveryService } from './webhooks/recoveries';
import { webhookRecoveryRoutes } from './webhooks/recovery-routes';
import { webhookRoutes } from './webhooks/routes';
import { createSecretBox, requireEncryptionKey } from './webhooks/secrets';
import { warnUnlessNoEviction } from './shared/redis-policy';

export interface RunningApi {
  server: http.Server;
  port: number;
  lifecycle: Lifecycle;
}

export async function startApi(config: Config, log: Logger): Promise<RunningApi> {
  const lifecycle = createLifecycle(log, config.shutdownTimeoutMs);
  const { db, redis, queues, metrics, openStatementPool } = createContainer({ role: 'api', config, log, lifecycle, dbPoolSize: 20 });
  warnUnlessNoEviction(redis, log);

  // Shared services: built once, handed to every module that uses them.
  const apiKeys = createApiKeyService({ db, cacheTtlMs: config.apiKeyCacheTtlMs });
  if (config.bootstrapApiKey) {
    await apiKeys.ensureBootstrapKey(config.bootstrapApiKey);
    log.info('bootstrap API key ensured (from BOOTSTRAP_API_KEY)');
  }
  const rateLimit = createApiRateLimit({ redis, log, lifecycle, prefix: config.redisPrefix, ...config.rateLimit });
  const applications = createApplicationService({ db, cacheTtlMs: config.apiKeyCacheTtlMs });
  const auth = createRouteGuard({ apiKeys, applications, rateLimit });
  const idempotency = createIdempotency({ db });
  const jobs = createJobProducer({ queues, redis, settings: { email: config.email }, log });
  // Requests do not wait for their job adds: on shutdown the adds still running finish after the
  // server has stopped and before the queues and Redis close (steps run last registered first).
  lifecycle.onShutdown('job adds in flight', () => jobs.drain());
  registerQueueMetrics(metrics.registry, redis, queues);

  // Domain services.
  const templates = createTemplateService({ db });
  const emails = createEmailService({
    db,
    jobs,
    mailFrom: config.mailFrom,
    templates,
    idempotency,
    metrics: createEmailAcceptMetrics(metrics.registry),
    // The accepting INSERT's own connections, a prepared statement on each (email/store.ts).
    pool: openStatementPool('email accept', EMAIL_ACCEPT_POOL_SIZE),
  });
  // Refuse to start without the key rather than fail on the first endpoint created.
  const secrets = createSecretBox(requireEncryptionKey(config.encryptionKey));
  const endpoints = createEndpointService({ db, secrets });
  // POST /v1/events' own statements (event-type check, recording), prepared, without the ORM layer.
  const publishPool = openStatementPool('event publish', PUBLISH_POOL_SIZE);
  const events = createEventService({ db, jobs, idempotency, pool: publishPool });
  const listings = createWebhookListings({ db });
  const eventTypes = createEventTypeService({ db, pool: publishPool });
  const recoveries = createRecoveryService({ db, jobs });
  const suppressions = createSuppressionService({ db });

  // The /v1 API: one module per domain; order does not matter.
  const modules: ApiModule[] = [
    applicationRoutes({ applications, auth: { apiKeys, applications }, quotas: rateLimit }),
    apiKeyRoutes({ apiKeys, applications, auth: { apiKeys, applications } }),
    emailRoutes({ emails, idempotency, auth }),
    templateRoutes({ templates, auth }),
    webhookRoutes({ endpoints, events, eventTypes, idempotency, auth, allowPrivateNetworks: config.webhooks.allowPrivateNetworks }),
    webhookListingRoutes({ listings, auth }),
    webhookRecoveryRoutes({ recoveries, auth }),
    suppressionRoutes({ suppressions, auth }),
    eventTypeRoutes({ eventTypes, auth }),
  ];

  const app = createHttpApp({
    log,
    metrics,
    db,
    redis,
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
