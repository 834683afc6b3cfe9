/**
 * The `inbound` role's composition root: the SMTP listener for BOUNCE_DOMAIN on INBOUND_PORT
 * (listener.ts), which turns delivery reports into timeline rows, statuses, suppressions and
 * webhook events (reports.ts), and a small health server on INBOUND_HEALTH_PORT. On SIGTERM the
 * health server reports not-ready, the listener stops accepting and lets messages in transfer
 * finish (new commands get 421, so the sending MTAs retry elsewhere or later), then connections close.
 */
import Koa from 'koa';
import { ConfigError, type Config } from '../config';
import { createContainer } from '../container';
import { verpFromConfig } from '../deliverability';
import { healthRouter } from '../http/health';
import { metricsRouter } from '../http/metrics';
import { closeServer, listen } from '../http/server';
import { createLifecycle, type Lifecycle } from '../lifecycle';
import type { Logger } from '../log';
import { createJobProducer } from '../queue/producer';
import { startInboundListener, type ListenerEvent } from './listener';
import { createInboundMetrics } from './metrics';
import { createReportStore, REPORT_POOL_SIZE } from './report-store';
import { createReportRecorder, TryAgainLater } from './reports';

export interface RunningInbound {
  smtpPort: number;
  healthPort: number;
  lifecycle: Lifecycle;
}

/** The listener's own grace period, inside SHUTDOWN_TIMEOUT_MS so the rest can still close. */
const CLOSE_MARGIN_MS = 5_000;

export async function startInbound(config: Config, log: Logger): Promise<RunningInbound> {
  if (!config.bounceDomain) throw new ConfigError(['BOUNCE_DOMAIN: required by the inbound role (the domain whose MX points at it)']);
  const verp = verpFromConfig(config)!;
  const lifecycle = createLifecycle(log, config.shutdownTimeoutMs);
  const container = createContainer({ role: 'inbound', config, log, lifecycle });
  const { db, redis, queues, metrics } = container;

  const app = new Koa();
  app.use(healthRouter({ db, redis, isShuttingDown: lifecycle.isShuttingDown }).routes()).use(metricsRouter(metrics.registry).routes());
  const health = await listen(app, config.inbound.healthPort, config.host);
  // Registered first, so it closes last: probes get answers (503 not-ready) while sessions finish.
  lifecycle.onShutdown('health server', () => closeServer(health.server));

  const jobs = createJobProducer({ queues, redis, settings: config, log });
  const inboundMetrics = createInboundMetrics(metrics.registry);
  // Registered before the listener, so it closes after the sessions have finished.
  const store = createReportStore(container.openStatementPool('inbound reports', REPORT_POOL_SIZE));
  const recorder = createReportRecorder({ store, jobs, verp, log });
  const listener = await startInboundListener({
    host: config.host,
    port: config.inbound.port,
    bounceDomain: config.bounceDomain,
    maxMessageBytes: config.inbound.maxMessageBytes,
    maxConnections: config.inbound.maxConnections,
    socketTimeoutMs: config.inbound.socketTimeoutMs,
    closeTimeoutMs: Math.max(1_000, config.shutdownTimeoutMs - CLOSE_MARGIN_MS),
    tls: config.inbound.tls,
    log,
    async onMessage(envelope, raw) {
      const stop = inboundMetrics.processing.startTimer();
      try {
        const result = await recorder.record(envelope, raw);
        if (result.kind === 'unusable') inboundMetrics.messages.inc({ result: result.reason });
        else {
          inboundMetrics.messages.inc({ result: result.recorded.length > 0 ? 'report' : 'duplicate' });
          for (const kind of result.recorded) inboundMetrics.reports.inc({ kind });
        }
      } catch (err) {
        inboundMetrics.messages.inc({ result: err instanceof TryAgainLater ? 'retry_later' : 'store_failed' });
        throw err;
      } finally {
        stop();
      }
    },
    onEvent(event: ListenerEvent) {
      if (event === 'relay_denied' || event === 'too_large' || event === 'too_many_recipients') inboundMetrics.rejections.inc({ reason: event });
    },
    onSessions: (delta) => inboundMetrics.sessions.inc(delta),
  });
  lifecycle.onShutdown('smtp listener', () => listener.close());
  log.info({ smtpPort: listener.port, healthPort: health.port, bounceDomain: config.bounceDomain, starttls: !!config.inbound.tls }, 'inbound listening');
  return { smtpPort: listener.port, healthPort: health.port, lifecycle };
}
