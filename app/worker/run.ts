/**
 * The machinery of a worker role: a BullMQ Worker per queue processor and one sweep loop. Which
 * processors and sweeps run is the root's business (app/worker/index.ts).
 */
import { Worker } from 'bullmq';
import type { Config } from '../config';
import type { Lifecycle } from '../lifecycle';
import type { Logger } from '../log';
import { workerConnectionOptions } from '../queue';
import type { QueueProcessor, Sweep } from '../queue/processor';

/**
 * Starts one BullMQ worker per processor. Each stops on shutdown after its active jobs finished;
 * resources the processors use must be registered with the lifecycle before this call, so they
 * close after the workers (steps run in reverse order).
 */
export function runProcessors(processors: QueueProcessor[], deps: { config: Config; log: Logger; lifecycle: Lifecycle }): void {
  const { config, log, lifecycle } = deps;
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
    lifecycle.onShutdown(`worker ${p.queue}`, () => worker.close()); // waits for active jobs
  }
}

/** Runs the sweeps one after the other, then waits intervalMs; returns the stop function. */
export function startSweeper(sweeps: Sweep[], intervalMs: number, log: Logger): () => Promise<void> {
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
