/**
 * Ordered, idempotent shutdown under a deadline. Resources register a close step as they are
 * created; on SIGTERM/SIGINT the steps run in reverse order (last opened, first closed), each
 * guarded so one failure does not skip the rest. Past the deadline the process exits non-zero.
 */
import type { Logger } from './log';

export interface Lifecycle {
  onShutdown(name: string, close: () => Promise<unknown> | unknown): void;
  isShuttingDown(): boolean;
  /** Runs the steps once; later calls return the same promise. Resolves true when all closed cleanly in time. */
  shutdown(reason: string): Promise<boolean>;
  /** SIGTERM/SIGINT → shutdown → process.exit(0 or 1). */
  exitOnSignals(): void;
}

export function createLifecycle(log: Logger, timeoutMs: number): Lifecycle {
  const steps: { name: string; close: () => Promise<unknown> | unknown }[] = [];
  let shuttingDown = false;
  let done: Promise<boolean> | undefined;

  async function runSteps(): Promise<boolean> {
    let clean = true;
    for (const step of [...steps].reverse()) {
      try {
        await step.close();
        log.debug({ step: step.name }, 'closed');
      } catch (err) {
        clean = false;
        log.error({ err, step: step.name }, 'shutdown step failed');
      }
    }
    return clean;
  }

  function shutdown(reason: string): Promise<boolean> {
    if (done) return done;
    shuttingDown = true;
    log.info({ reason, timeoutMs }, 'shutting down');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => {
        log.error({ timeoutMs }, 'shutdown deadline passed; exiting with work unfinished');
        resolve(false);
      }, timeoutMs);
      timer.unref();
    });
    done = Promise.race([runSteps(), deadline]).finally(() => clearTimeout(timer));
    return done;
  }

  return {
    onShutdown: (name, close) => void steps.push({ name, close }),
    isShuttingDown: () => shuttingDown,
    shutdown,
    exitOnSignals() {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.on(signal, () => {
          void shutdown(signal).then((clean) => {
            log.info({ clean }, 'stopped');
            log.flush?.();
            process.exit(clean ? 0 : 1);
          });
        });
      }
    },
  };
}
