/** Runs the real `easeemail` CLI as separate processes (for tests about processes and signals). */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { Env } from '../../app/config';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'app', 'main.ts');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface CliProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

/** Every child still running when the test process ends is killed: a failed test must not leak a server. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `easeemail <args>` with exactly the given environment (plus PATH/HOME): the sources
 * under tsx, or `main`, a compiled app/main.js (the benchmarks run what the image runs).
 */
export function startCli(args: string[], env: Env, opts: { main?: string; nodeArgs?: string[] } = {}): CliProcess {
  // One process (no tsx wrapper), so signals, SIGKILL included, reach the app itself.
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...(opts.main ? [opts.main] : ['--import', 'tsx', MAIN]), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  running.add(child);
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  return { child, output: () => out, exited };
}

/** Runs `easeemail <args>` to completion. */
export async function runCli(args: string[], env: Env): Promise<{ code: number | string; output: string; ms: number }> {
  const started = Date.now();
  const p = startCli(args, env);
  const code = await p.exited;
  return { code, output: p.output(), ms: Date.now() - started };
}

/**
 * Polls a URL until it answers with the wanted status. The default leaves room for a role's
 * start-up under tsx (it compiles the whole app), measured at over 20 s at load 19 on 2 cores.
 */
export async function waitForHttp(url: string, opts: { status?: number; timeoutMs?: number } = {}): Promise<Response> {
  const deadline = Date.now() + (opts.timeoutMs ?? 45_000);
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.status === (opts.status ?? 200)) return res;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer ${opts.status ?? 200} in time (last: ${last})`);
}

export interface RoleProcess {
  role: 'api' | 'worker';
  cli: CliProcess;
  port: number;
  /** http://127.0.0.1:<port>: the api, or the worker's health and metrics server. */
  url: string;
}

export interface RoleOptions {
  /** `live` for a worker that must start while Redis is down; default `ready`. */
  waitFor?: 'live' | 'ready';
  /** Default: a free port. A restarted worker keeps its port. */
  port?: number;
  timeoutMs?: number;
  main?: string;
  /** Node options that NODE_OPTIONS cannot carry (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

/** Starts `easeemail api|worker` as its own process and waits until it answers; on failure says why, with its output. */
export async function startRole(role: 'api' | 'worker', env: Env, opts: RoleOptions = {}): Promise<RoleProcess> {
  const port = opts.port ?? (await freePort());
  const cli = startCli([role], { ...env, [role === 'api' ? 'PORT' : 'WORKER_HEALTH_PORT']: String(port) }, { main: opts.main, nodeArgs: opts.nodeArgs });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/health/${opts.waitFor ?? 'ready'}`, { timeoutMs: opts.timeoutMs ?? 30_000 });
  } catch (err) {
    await stopProcess(cli, 'SIGKILL');
    throw new Error(`${role} did not start: ${(err as Error).message}\n${cli.output().slice(-3000)}`);
  }
  return { role, cli, port, url };
}

export async function stopProcess(p: CliProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  return p.exited;
}
