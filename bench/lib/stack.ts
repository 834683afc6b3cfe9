/**
 * What a benchmark runs against: a fresh PostgreSQL schema and Redis prefix (the same isolation
 * the tests use), and the real `easeemail` CLI started as separate processes (api, worker) on
 * loopback ports, with their pids for memory sampling.
 */
import type { Env } from '../../app/config';
import { createApiKeyService } from '../../app/auth/api-keys';
import globalSetup from '../../test/support/global-setup';
import { createTestEnvironment, type TestEnvironment } from '../../test/support/isolation';
import { freePort, startCli, stopProcess, waitForHttp, type CliProcess } from '../../test/support/processes';

export interface RoleProcess {
  role: 'api' | 'worker';
  pid: number;
  /** http://127.0.0.1:port of the api, or of the worker's health server. */
  url: string;
  cli: CliProcess;
  stop(): Promise<void>;
}

export interface BenchStack {
  env: TestEnvironment;
  /** An API key with the given scopes. */
  apiKey: string;
  start(role: 'api' | 'worker', extraEnv?: Env): Promise<RoleProcess>;
  /** Every role process started so far (running or not). */
  processes: RoleProcess[];
  close(): Promise<void>;
}

/** Production-like settings for the spawned processes, over the test environment's. */
const BENCH_ENV: Env = { NODE_ENV: 'production', LOG_LEVEL: 'warn' };

export async function benchStack(label: string, env: Env, scopes: string[] = ['admin']): Promise<BenchStack> {
  await globalSetup(); // makes sure PostgreSQL and Redis answer and the database exists
  const t = await createTestEnvironment(label, { ...BENCH_ENV, ...env });
  const { key } = await createApiKeyService({ db: t.db }).create({ name: `bench ${label}`, scopes });
  const processes: RoleProcess[] = [];

  async function start(role: 'api' | 'worker', extraEnv: Env = {}): Promise<RoleProcess> {
    const port = await freePort();
    const portKey = role === 'api' ? 'PORT' : 'WORKER_HEALTH_PORT';
    const cli = startCli([role], { ...t.env, ...extraEnv, [portKey]: String(port) });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/health/ready`, { timeoutMs: 60_000 });
    } catch (err) {
      await stopProcess(cli, 'SIGKILL');
      throw new Error(`${role} did not become ready: ${(err as Error).message}\n${cli.output().slice(-2000)}`);
    }
    const proc: RoleProcess = {
      role,
      pid: cli.child.pid!,
      url,
      cli,
      stop: async () => {
        await stopProcess(cli, 'SIGTERM');
      },
    };
    processes.push(proc);
    return proc;
  }

  return {
    env: t,
    apiKey: key,
    start,
    processes,
    async close() {
      await Promise.all(processes.map((p) => p.stop()));
      await t.cleanup();
    },
  };
}
