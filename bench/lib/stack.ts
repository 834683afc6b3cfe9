/**
 * What a benchmark runs against: a fresh PostgreSQL schema and Redis prefix (the same isolation
 * the tests use), and the real `easeemail` CLI started as separate processes (api, worker) on
 * loopback ports, with their pids for memory sampling.
 *
 * The CLI runs compiled, as the container image runs it (`tsc -p tsconfig.build.json` into a
 * temporary directory, `node app/main.js`): under tsx the processes would carry the TypeScript
 * loader (about 150 MB more RSS, slower start). BENCH_RUNTIME=tsx runs the sources instead; a
 * failed build falls back to tsx with a warning. The api and worker get the NODE_OPTIONS the
 * deployment model gives them in production (the heap cap derived from the pod's memory limit),
 * so peak RSS is measured under the caps they run with, and the model's other runtime variables
 * (glibc malloc's; BENCH_APP_ENV may override them); BENCH_NODE_OPTIONS replaces NODE_OPTIONS for both
 * (e.g. "--max-old-space-size=160" to see the effect of another cap, "" for none).
 * BENCH_CPU_PROF=<dir> writes a V8 CPU profile of every api and worker process into <dir>
 * (open it in Chrome DevTools; Node refuses --cpu-prof in NODE_OPTIONS, so it is an argument).
 * BENCH_NODE_ARGS adds node arguments to both (space-separated, e.g. "--require ./probe.js"), and
 * BENCH_APP_ENV settings of the app ("WORKER_CONCURRENCY=32 SMTP_POOL_SIZE=8"), to try a setting.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Env } from '../../app/config';
import { createModel, resolveEnv } from '../../charts/model';
import { createApiKeyService } from '../../app/auth/api-keys';
import globalSetup from '../../test/support/global-setup';
import { createTestEnvironment, type TestEnvironment } from '../../test/support/isolation';
import { startRole, stopProcess, type CliProcess } from '../../test/support/processes';

const ROOT = path.resolve(__dirname, '..', '..');

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
const BENCH_ENV: Env = {
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  // The benchmarks measure the pipeline, not the rate limiter's refusals (its Redis call still runs).
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
};

/** What the production profile sets for the role (the heap cap from its memory limit). */
export function productionNodeOptions(role: 'api' | 'worker'): string {
  return resolveEnv(createModel(), 'prod', role).runtime.NODE_OPTIONS ?? '';
}

/** The NODE_OPTIONS a bench process of the role runs with. */
export function benchNodeOptions(role: 'api' | 'worker'): string {
  return process.env.BENCH_NODE_OPTIONS ?? productionNodeOptions(role);
}

/** The production profile's other runtime variables for the role (glibc malloc's), as the pods get them. */
export function productionRuntimeEnv(role: 'api' | 'worker'): Env {
  const { NODE_OPTIONS: _heap, ...rest } = resolveEnv(createModel(), 'prod', role).runtime;
  return rest;
}

/** How a bench process of the role runs, for the report: its NODE_OPTIONS and the other runtime variables. */
export function benchRuntimeNote(role: 'api' | 'worker'): string {
  const others = Object.entries(productionRuntimeEnv(role)).map(([k, v]) => `${k}=${v}`);
  return [`NODE_OPTIONS "${benchNodeOptions(role)}"`, ...others].join(' ');
}

/** The node arguments of a bench process of the role: BENCH_CPU_PROF's profile into <dir>/<role>, then BENCH_NODE_ARGS. */
export function benchNodeArgs(role: string): string[] {
  const profileDir = process.env.BENCH_CPU_PROF;
  return [
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir, role)}`] : []),
    ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
  ];
}

let compiled: Promise<string | undefined> | undefined;

/** How the roles run, for a report's context: compiled as in the image, or the sources under tsx. */
export async function benchRuntime(): Promise<string> {
  return (await compiledMain()) ? 'compiled (node app/main.js)' : 'tsx (sources)';
}

/** Compiles the app once per benchmark run; resolves with the compiled main.js, or undefined (use tsx). */
export function compiledMain(): Promise<string | undefined> {
  if (process.env.BENCH_RUNTIME === 'tsx') return Promise.resolve(undefined);
  compiled ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'easeemail-bench-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    try {
      await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', dir], { cwd: ROOT });
    } catch (err) {
      console.error(`[bench] the build failed, running the sources with tsx instead:\n${String((err as { stdout?: string }).stdout ?? err).slice(0, 2000)}`);
      return undefined;
    }
    // What the compiled code finds next to it, as in the image: package.json, migrations, modules.
    copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    symlinkSync(path.join(ROOT, 'prisma'), path.join(dir, 'prisma'));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    return path.join(dir, 'app', 'main.js');
  })();
  return compiled;
}

export async function benchStack(label: string, env: Env, scopes: string[] = ['admin']): Promise<BenchStack> {
  await globalSetup(); // makes sure PostgreSQL and Redis answer and the database exists
  const main = await compiledMain();
  const tried = Object.fromEntries((process.env.BENCH_APP_ENV?.split(/\s+/).filter(Boolean) ?? []).map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
  const t = await createTestEnvironment(label, { ...BENCH_ENV, ...env, ...tried });
  const { key } = await createApiKeyService({ db: t.db }).create({ name: `bench ${label}`, scopes });
  const processes: RoleProcess[] = [];

  async function start(role: 'api' | 'worker', extraEnv: Env = {}): Promise<RoleProcess> {
    const roleEnv = {
      ...productionRuntimeEnv(role),
      ...t.env,
      NODE_OPTIONS: benchNodeOptions(role),
      ...extraEnv,
    };
    const { cli, url } = await startRole(role, roleEnv, { main, timeoutMs: 60_000, nodeArgs: benchNodeArgs(role) });
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
