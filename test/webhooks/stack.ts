/**
 * The webhook suites' fixture: an own schema and Redis prefix, the real api (and optionally the
 * real worker) in this process, an API key, and small helpers around the HTTP API.
 */
import { startApi, type RunningApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import type { Env } from '../../app/config';
import { createLogger } from '../../app/log';
import { createIdempotency } from '../../app/http/idempotency';
import { createQueues, producerConnection, type Queues } from '../../app/queue';
import { createJobProducer, type JobProducer } from '../../app/queue/producer';
import { createEventService, type EventService } from '../../app/webhooks/event-service';
import { startWorker, type RunningWorker } from '../../app/worker';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { freePort, startCli, stopProcess, waitForHttp, type CliProcess } from '../support/processes';

export const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * Settings shared by the delivery suites: loopback receivers need the address rule lifted, and
 * the retry schedule and timeout are shrunk so retries happen within a test (200 ms between
 * attempts; WEBHOOK_TIMEOUT_MS 3 s instead of 15 s).
 */
export const FAST_DELIVERY_ENV: Env = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_RETRY_SCHEDULE: '0.2,0.2,0.2,0.2',
  WEBHOOK_TIMEOUT_MS: '3000',
  SMTP_TIMEOUT_MS: '3000',
  JOB_LOCK_MS: '10000',
  SWEEP_INTERVAL_MS: '500',
  RATE_LIMIT_PER_SECOND: '100000',
  RATE_LIMIT_BURST: '100000',
};

export interface Stack {
  t: TestEnvironment;
  /** In-process roles (startStack). */
  api?: RunningApi;
  worker?: RunningWorker;
  /** Separate `easeemail` processes (startProcessStack). */
  apiProcess?: CliProcess;
  workerProcess?: CliProcess;
  base: string;
  /** The worker's health and metrics port. */
  workerPort?: number;
  key: string;
  /** fetch against the api with the key and a JSON body. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  /** call() that expects a 2xx JSON answer. */
  json<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  createEndpoint(body: Record<string, unknown>): Promise<{ id: string; secret: string; url: string }>;
  publish(type: string, payload?: Record<string, unknown>): Promise<{ id: string; deliveries: number }>;
  stop(): Promise<void>;
}

function stackFor(t: TestEnvironment, base: string, key: string, parts: Partial<Stack>, stopRoles: () => Promise<void>): Stack {
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  const json = async (method: string, path: string, body?: unknown) => {
    const res = await call(method, path, body);
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return {
    t,
    ...parts,
    base,
    key,
    call,
    json,
    createEndpoint: (body) => json('POST', '/v1/webhook-endpoints', body),
    publish: (type, payload = {}) => json('POST', '/v1/events', { type, payload }),
    async stop() {
      await stopRoles();
      await t.cleanup();
    },
  };
}

async function adminKey(t: TestEnvironment, scopes: string[]): Promise<string> {
  return (await createApiKeyService({ db: t.db }).create({ name: 'webhook tests', scopes })).key;
}

/** The api (and optionally the worker) in this process. */
export async function startStack(label: string, env: Env, opts: { worker?: boolean; scopes?: string[] } = {}): Promise<Stack> {
  const t = await createTestEnvironment(label, env);
  const api = await startApi(t.config, log);
  const worker = opts.worker ? await startWorker(t.config, log) : undefined;
  const key = await adminKey(t, opts.scopes ?? ['admin']);
  return stackFor(t, `http://127.0.0.1:${api.port}`, key, { api, worker, workerPort: worker?.port }, async () => {
    await worker?.lifecycle.shutdown('test end');
    await api.lifecycle.shutdown('test end');
  });
}

/** Starts `easeemail worker` as its own process and waits until it is ready. */
export async function startWorkerProcess(t: TestEnvironment, port: number): Promise<CliProcess> {
  const p = startCli(['worker'], { ...t.env, WORKER_HEALTH_PORT: String(port) });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/health/ready`, { timeoutMs: 30_000 });
  } catch (err) {
    await stopProcess(p, 'SIGKILL');
    throw new Error(`${(err as Error).message}\n${p.output()}`);
  }
  return p;
}

/** The api and the worker as separate `easeemail` processes (the real CLI), as deployed. */
export async function startProcessStack(label: string, env: Env, opts: { worker?: boolean } = {}): Promise<Stack> {
  const t = await createTestEnvironment(label, env);
  const [apiPort, workerPort] = [await freePort(), await freePort()];
  const apiProcess = startCli(['api'], { ...t.env, PORT: String(apiPort) });
  const base = `http://127.0.0.1:${apiPort}`;
  await waitForHttp(`${base}/health/ready`, { timeoutMs: 30_000 }).catch(async (err) => {
    await stopProcess(apiProcess, 'SIGKILL');
    throw new Error(`${(err as Error).message}\n${apiProcess.output()}`);
  });
  const workerProcess = opts.worker === false ? undefined : await startWorkerProcess(t, workerPort);
  const key = await adminKey(t, ['admin']);
  const stack: Stack = stackFor(t, base, key, { apiProcess, workerProcess, workerPort }, async () => {
    if (stack.workerProcess) await stopProcess(stack.workerProcess);
    await stopProcess(apiProcess);
  });
  return stack;
}

/** Polls until `check` returns a value other than undefined. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The producer side the api has (queues, event service), for publishing from the test process. */
export interface Publisher {
  redis: ReturnType<typeof producerConnection>;
  queues: Queues;
  jobs: JobProducer;
  events: EventService;
  close(): Promise<void>;
}

export function openPublisher(t: TestEnvironment): Publisher {
  const redis = producerConnection(t.config.redisUrl);
  const queues = createQueues(redis, t.redisPrefix);
  const jobs = createJobProducer({ queues, redis, settings: t.config, log });
  return {
    redis,
    queues,
    jobs,
    events: createEventService({ db: t.db, jobs, idempotency: createIdempotency({ db: t.db }) }),
    async close() {
      await queues.close();
      await redis.quit();
    },
  };
}
