/**
 * The `worker` role: BullMQ workers for every queue processor, the sweeper, and a small health
 * server on WORKER_HEALTH_PORT. On SIGTERM the health server reports not-ready, the BullMQ
 * workers stop taking jobs and let active ones finish, then connections close.
 */
import { Worker } from 'bullmq';
import Koa from 'koa';
import type { Config } from '../config';
import { createContainer, type Container } from '../container';
import { healthRouter } from '../http/health';
import { metricsRouter } from '../http/metrics';
import { closeServer, listen } from '../http/server';
import { createLifecycle, type Lifecycle } from '../lifecycle';
import type { Logger } from '../log';
import { workerConnectionOptions } from '../queue';
import { buildProcessors, buildSweeps, type Sweep } from './processors';

export interface RunningWorker {
  port: number;
  container: Container;
  lifecycle: Lifecycle;
}

function startSweeper(sweeps: Sweep[], intervalMs: number, log: Logger): () => Promise<void> {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    for (const sweep of sweeps) {
      if (stopped) return;
      try {
        const n = await sweep.run();
        if (n > 0) log.info({ sweep: sweep.name, rows: n }, 'sweep acted');
      } catch (err) {
        log.warn({ err, sweep: sweep.name }, 'sweep failed; will retry');
      }
    }
  };
  const loop = () => {
    if (stopped) return;
    running = tick().finally(() => {
      if (!stopped) timer = setTimeout(loop, intervalMs);
    });
  };
  timer = setTimeout(loop, 0);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}

export async function startWorker(config: Config, log: Logger): Promise<RunningWorker> {
  const lifecycle = createLifecycle(log, config.shutdownTimeoutMs);
  const c = createContainer({ role: 'worker', config, log, lifecycle });

  const app = new Koa();
  const health = healthRouter({ db: c.db, redis: c.redis, isShuttingDown: lifecycle.isShuttingDown });
  app.use(health.routes()).use(metricsRouter(c.metrics.registry).routes());
  const { server, port } = await listen(app, config.workerHealthPort, config.host);
  // Registered before the queue workers, so it closes after them: probes keep getting answers
  // (503 not-ready) while active jobs drain.
  lifecycle.onShutdown('health server', () => closeServer(server));
  const processors = buildProcessors(c);
  for (const p of processors) {
    const worker = new Worker(p.queue, (job) => p.process(job), {
      connection: workerConnectionOptions(config.redisUrl),
      prefix: config.redisPrefix,
      concurrency: config.workerConcurrency,
      lockDuration: config.jobLockMs,
      // Stalled jobs (a worker died holding them) are retried, not failed: delivery is at-least-once.
      maxStalledCount: 10,
      ...p.options,
    });
    worker.on('error', (err) => log.warn({ err, queue: p.queue }, 'queue worker error'));
    worker.on('failed', (job, err) => log.debug({ err, queue: p.queue, jobId: job?.id }, 'job attempt failed'));
    lifecycle.onShutdown(`worker ${p.queue}`, async () => {
      await worker.close(); // waits for active jobs
      await p.close?.();
    });
  }

  const stopSweeper = startSweeper(buildSweeps(c), config.sweepIntervalMs, log);
  lifecycle.onShutdown('sweeper', stopSweeper);

  log.info({ port, queues: processors.map((p) => p.queue) }, 'worker started');
  return { port, container: c, lifecycle };
}
