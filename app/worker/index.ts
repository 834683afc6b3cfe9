/**
 * The `worker` role's composition root: builds every service once from the container's
 * infrastructure, lists the queue processors and sweeps (one line each), and runs them with a
 * small health server on WORKER_HEALTH_PORT. On SIGTERM the health server reports not-ready, the
 * BullMQ workers stop taking jobs and let active ones finish, then connections close.
 */
import Koa from 'koa';
import type { Config } from '../config';
import { createContainer, type Container } from '../container';
import { createOutgoingMail, verpFromConfig } from '../deliverability';
import { createEmailDeliveryMetrics } from '../email/metrics';
import { createEmailProcessors, EMAIL_POOL_SIZE } from '../email/processor';
import { createEmailSweeps } from '../email/sweeps';
import { createSmtpTransport } from '../email/transport';
import { healthRouter } from '../http/health';
import { createIdempotency } from '../http/idempotency';
import { metricsRouter } from '../http/metrics';
import { registerReadinessMetrics } from '../http/readiness-metrics';
import { closeServer, listen } from '../http/server';
import { createLifecycle, type Lifecycle } from '../lifecycle';
import type { Logger } from '../log';
import { JOBS } from '../queue';
import { registerQueueMetrics } from '../queue/metrics';
import type { QueueProcessor, Sweep } from '../queue/processor';
import { createJobProducer } from '../queue/producer';
import { createSuppressionCheck, SUPPRESSION_CHECK_POOL_SIZE } from '../suppressions';
import { createWebhookMetrics } from '../webhooks/metrics';
import { createRetentionMetrics, createRetentionSweep } from '../retention/sweep';
import { createAttemptSender } from '../webhooks/attempt';
import { createOperationalEvents } from '../webhooks/operational-events';
import { createRecoverySweep } from '../webhooks/recoveries';
import { createRecoveryProcessor } from '../webhooks/recovery-task';
import { createWebhookProcessor, WEBHOOK_POOL_SIZE } from '../webhooks/processor';
import { createEndpointRateLimiter } from '../webhooks/rate-limiter';
import { createSecretBox, requireEncryptionKey } from '../webhooks/secrets';
import { createWebhookSender } from '../webhooks/sender';
import { createWebhookSweep } from '../webhooks/sweeper';
import { runProcessors, startSweeper } from './run';
import { warnUnlessNoEviction } from '../shared/redis-policy';

/**
 * Prisma's connections. The hot statements (email claims and outcomes, suppression checks, webhook
 * loads and records) run on small pools of their own below and are shared by concurrent jobs
 * (shared/coalesce.ts), so no pool grows with WORKER_CONCURRENCY; this one serves sweeps,
 * recoveries, large email bodies and jobs that found nothing to claim (20, what it had before).
 */
const WORKER_DB_POOL_SIZE = 20;

export interface RunningWorker {
  port: number;
  container: Container;
  lifecycle: Lifecycle;
}

export async function startWorker(config: Config, log: Logger): Promise<RunningWorker> {
  const lifecycle = createLifecycle(log, config.shutdownTimeoutMs);
  const c = createContainer({ role: 'worker', config, log, lifecycle, dbPoolSize: WORKER_DB_POOL_SIZE });
  const { db, redis, queues, metrics } = c;
  warnUnlessNoEviction(redis, log);

  const app = new Koa();
  const health = healthRouter({ db, redis, isShuttingDown: lifecycle.isShuttingDown });
  registerReadinessMetrics(metrics.registry, { db, redis, isShuttingDown: lifecycle.isShuttingDown });
  app.use(health.routes()).use(metricsRouter(metrics.registry).routes());
  const { server, port } = await listen(app, config.workerHealthPort, config.host);
  // Registered before the queue workers, so it closes after them: probes keep getting answers
  // (503 not-ready) while active jobs drain.
  lifecycle.onShutdown('health server', () => closeServer(server));

  // Shared services. Resources registered here close after the queue workers (reverse order).
  const jobs = createJobProducer({ queues, redis, settings: { email: config.email }, log });
  registerQueueMetrics(metrics.registry, redis, queues);
  const transport = createSmtpTransport({ smtpUrl: config.smtpUrl, smtpTimeoutMs: config.smtpTimeoutMs, smtpPoolSize: config.smtpPoolSize });
  lifecycle.onShutdown('smtp transport', () => transport.close());
  const sender = createWebhookSender({ timeoutMs: config.webhooks.timeoutMs, allowPrivateNetworks: config.webhooks.allowPrivateNetworks });
  lifecycle.onShutdown('webhook sender', () => sender.close());

  const webhookMetrics = createWebhookMetrics(metrics.registry, db);
  const webhookPool = c.openStatementPool('webhook delivery', WEBHOOK_POOL_SIZE);
  const webhookSecrets = createSecretBox(requireEncryptionKey(config.encryptionKey));
  const rateLimiter = createEndpointRateLimiter({ redis, prefix: config.redisPrefix });

  // One processor per queue (emails have two: a job each, and a job for emails accepted together).
  const processors: QueueProcessor[] = [
    ...createEmailProcessors({
      db,
      pool: c.openStatementPool('email delivery', EMAIL_POOL_SIZE),
      jobs,
      log: log.child({ queue: JOBS.email.queue }),
      transport,
      outgoing: createOutgoingMail({
        suppressions: createSuppressionCheck({ pool: c.openStatementPool('suppression check', SUPPRESSION_CHECK_POOL_SIZE) }),
        verp: verpFromConfig(config),
        dkim: config.dkim,
      }),
      metrics: createEmailDeliveryMetrics(metrics.registry),
      leaseMs: config.jobLockMs,
      settings: { email: config.email },
      concurrency: config.workerConcurrency,
    }),
    createWebhookProcessor({
      db,
      pool: webhookPool,
      log: log.child({ queue: JOBS.webhook.queue }),
      secrets: webhookSecrets,
      sender,
      metrics: webhookMetrics,
      rateLimiter,
      operational: createOperationalEvents({ db, jobs, log, onRecorded: webhookMetrics.operationalEvent }),
      settings: config.webhooks,
      jobLockMs: config.jobLockMs,
    }),
    createRecoveryProcessor({
      db,
      pool: webhookPool,
      log: log.child({ queue: JOBS.recovery.queue }),
      attempts: createAttemptSender({ secrets: webhookSecrets, sender }),
      rateLimiter,
      isShuttingDown: lifecycle.isShuttingDown,
      onResend: webhookMetrics.recovered,
    }),
  ];

  // Periodic repairs. Rows are looked at once overdue by one sweep period: the api enqueues right
  // after its commit, and a duplicate add would be ignored anyway (job id = row id).
  const graceMs = Math.max(1_000, config.sweepIntervalMs);
  const idempotency = createIdempotency({ db });
  const sweeps: Sweep[] = [
    ...createEmailSweeps({ db, jobs, queues, graceMs, leaseMs: config.jobLockMs }),
    { name: 'idempotency-expired', run: () => idempotency.purgeExpired() },
    createWebhookSweep({ db, jobs, graceMs }),
    createRetentionSweep({
      db,
      retentionDays: config.retention.days,
      batch: config.retention.batch,
      pauseMs: config.retention.pauseMs,
      metrics: createRetentionMetrics(metrics.registry),
    }),
    createRecoverySweep({ db, jobs, graceMs }),
  ];

  runProcessors(processors, { config, log, lifecycle });
  lifecycle.onShutdown('sweeper', startSweeper(sweeps, config.sweepIntervalMs, log));

  log.info({ port, queues: processors.map((p) => p.queue) }, 'worker started');
  return { port, container: c, lifecycle };
}
