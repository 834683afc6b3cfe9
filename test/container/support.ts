/**
 * Helpers for the container suite: run docker, docker-compose and podman against the engine at
 * DOCKER_HOST (the container lab in CI), with unique names and bounded waits.
 *
 * Network rule: the test process talks only to 127.0.0.1 (ports the stack publishes on loopback);
 * containers talk to each other on the compose project's networks.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import packageJson from '../../package.json';
import { eventually, type EventuallyOptions } from '../support/eventually';
import { freePort } from '../support/processes';

export { eventually, freePort };

/** How the suite polls containers: each look costs a docker call, and errors mean "still starting". */
export const POLL = { intervalMs: 1_000, retryErrors: true } satisfies EventuallyOptions;

export const ROOT = path.resolve(__dirname, '..', '..');
export const COMPOSE_FILE = path.join(ROOT, 'compose', 'compose.yaml');
/** The reference the manifests and the compose file use (charts/model.ts DEFAULT_IMAGE). */
export const IMAGE = `${packageJson.name}:${packageJson.version}`;
export const BASE_IMAGE = 'node:24-bookworm-slim';
/** What `docker build` through the lab's API names it; podman kube play wants the full name. */
export const IMAGE_FULL_NAME = `docker.io/library/${IMAGE}`;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion; never throws for a non-zero exit (see `mustRun`). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? `\n${err.message}` : ''), ms: Date.now() - started });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** Runs a command and throws, with its output, unless it exits 0. */
export async function mustRun(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code} after ${r.ms} ms\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r;
}

export const docker = (args: string[], opts?: Parameters<typeof run>[2]) => mustRun('docker', args, opts);
export const podman = (args: string[], opts?: Parameters<typeof run>[2]) => mustRun('podman', args, opts);

/** A name no other run uses: lower-case letters and digits only (compose project names). */
export function uniqueName(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


export interface ContainerState {
  id: string;
  name: string;
  service: string;
  status: string;
  exitCode: number;
  /** '' when the container has no healthcheck. */
  health: string;
}

export async function inspectContainers(ids: string[]): Promise<ContainerState[]> {
  if (ids.length === 0) return [];
  const format = '{{json .Id}}\t{{json .Name}}\t{{json (index .Config.Labels "com.docker.compose.service")}}\t{{json .State.Status}}\t{{.State.ExitCode}}\t{{if .State.Health}}{{json .State.Health.Status}}{{else}}""{{end}}';
  const r = await docker(['inspect', '-f', format, ...ids]);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, name, service, status, exitCode, health] = line.split('\t');
      return { id: JSON.parse(id), name: JSON.parse(name).replace(/^\//, ''), service: JSON.parse(service) ?? '', status: JSON.parse(status), exitCode: Number(exitCode), health: JSON.parse(health) };
    });
}

/** Exit code of a container that has stopped (waits for it, bounded). */
export async function waitForExit(container: string, timeoutMs: number): Promise<{ exitCode: number; ms: number }> {
  const started = Date.now();
  const r = await docker(['wait', container], { timeoutMs });
  return { exitCode: Number(r.stdout.trim()), ms: Date.now() - started };
}

export async function logs(container: string): Promise<string> {
  const r = await run('docker', ['logs', container]);
  return r.stdout + r.stderr;
}

/** A docker-compose project on compose/compose.yaml, with its own name and host ports. */
export class ComposeProject {
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly name: string,
    readonly ports: { api: number; mailpit: number },
  ) {
    this.env = { EASEEMAIL_API_PORT: String(ports.api), MAILPIT_UI_PORT: String(ports.mailpit) };
  }

  static async create(prefix: string): Promise<ComposeProject> {
    return new ComposeProject(uniqueName(prefix), { api: await freePort(), mailpit: await freePort() });
  }

  /** A network of this project, as docker-compose 1.29 names it. */
  network(name: 'internal' | 'public'): string {
    return `${this.name}_${name}`;
  }

  compose(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return mustRun('docker-compose', ['-p', this.name, '-f', COMPOSE_FILE, ...args], { env: this.env, timeoutMs: opts.timeoutMs ?? 300_000 });
  }

  async containers(service?: string): Promise<ContainerState[]> {
    const r = await this.compose(['ps', '-q', ...(service ? [service] : [])]);
    return inspectContainers(r.stdout.split('\n').map((s) => s.trim()).filter(Boolean));
  }

  /**
   * Waits until every running container of the project is healthy (or running, without a
   * healthcheck) and one-shot services exited 0; fails at once when one exits non-zero or turns unhealthy.
   */
  async waitHealthy(opts: { timeoutMs: number; expect?: Record<string, number> }): Promise<ContainerState[]> {
    return eventually(
      async () => {
        const states = await this.containers();
        for (const s of states) {
          if (s.status === 'exited' && s.exitCode !== 0) throw new FatalError(`${s.name} exited ${s.exitCode}\n${await logs(s.id)}`);
          if (s.health === 'unhealthy') throw new FatalError(`${s.name} is unhealthy\n${await logs(s.id)}`);
        }
        for (const [service, n] of Object.entries(opts.expect ?? {})) if (states.filter((s) => s.service === service).length !== n) return undefined;
        const ready = states.every((s) => (s.status === 'exited' && s.exitCode === 0) || (s.status === 'running' && (s.health === '' || s.health === 'healthy')));
        return ready && states.length > 0 ? states : undefined;
      },
      `project ${this.name} to be healthy`,
      {
        ...POLL,
        // A container that exited non-zero or turned unhealthy ends the wait at once.
        retryErrors: (err) => !(err instanceof FatalError),
        timeoutMs: opts.timeoutMs,
        describe: async () => (await this.containers()).map((s) => `${s.name}: ${s.status} ${s.health}`).join('\n'),
      },
    );
  }

  /** `down -v -t 10`: containers, networks and volumes of the project; safe to call twice. */
  down(): Promise<RunResult> {
    return this.compose(['down', '-v', '--remove-orphans', '-t', '10'], { timeoutMs: 180_000 });
  }
}

/** Ends `eventually` at once: a state that waiting cannot fix. */
class FatalError extends Error {}

/** Runs a container detached (no --rm: podman's API reports a wrong exit code with it). */
export async function runDetached(name: string, args: string[]): Promise<string> {
  await docker(['run', '-d', '--name', name, ...args]);
  return name;
}

/** Runs a container to completion and removes it: its exit code, output and duration. */
export async function runToCompletion(args: string[], opts: { timeoutMs?: number; name?: string } = {}): Promise<{ exitCode: number; output: string; ms: number }> {
  const name = opts.name ?? uniqueName('eect');
  const started = Date.now();
  try {
    await runDetached(name, args);
    const { exitCode } = await waitForExit(name, opts.timeoutMs ?? 120_000);
    return { exitCode, output: await logs(name), ms: Date.now() - started };
  } finally {
    await removeContainers([name]);
  }
}

/** Removes containers by name, whatever their state (cleanup only; SIGKILL is fine there). */
export async function removeContainers(names: string[]): Promise<void> {
  if (names.length > 0) await run('docker', ['rm', '-f', '-v', ...names], { timeoutMs: 60_000 });
}

/** HTTP to the stack's published loopback ports only. */
export async function http(url: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  if (!url.startsWith('http://127.0.0.1:')) throw new Error(`the suite talks to loopback only, not ${url}`);
  const { json, ...rest } = init;
  const res = await fetch(url, {
    ...rest,
    headers: { ...(json !== undefined ? { 'content-type': 'application/json' } : {}), ...(rest.headers as Record<string, string>) },
    body: json !== undefined ? JSON.stringify(json) : rest.body,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, headers: res.headers };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

/** Prints a figure for the CI log (jest shows console output of passing suites too). */
export function report(line: string): void {
  process.stdout.write(`[container-suite] ${line}\n`);
}
