/**
 * The stack every integration suite runs against: a private schema and Redis prefix, a test SMTP
 * server, an API key, and the api (and worker) either in this process (`startStack`) or as
 * separate `easeemail` processes, as deployed (`startProcessStack`), with small helpers around
 * the HTTP API. Suites about single processes and signals use test/support/processes directly.
 */
import { startApi, type RunningApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import type { Env } from '../../app/config';
import { createIdempotency } from '../../app/http/idempotency';
import { createLogger, type Logger } from '../../app/log';
import { createQueues, producerConnection, type Queues } from '../../app/queue';
import { createJobProducer, type JobProducer } from '../../app/queue/producer';
import { createEventService, type EventService } from '../../app/webhooks/event-service';
import { startWorker, type RunningWorker } from '../../app/worker';
import { eventually } from './eventually';
import { request, type ApiResponse } from './http';
import { createTestEnvironment, type TestEnvironment } from './isolation';
import { startRole, stopProcess, waitForHttp, type RoleProcess } from './processes';
import { startSmtpServer, type SmtpServerSettings, type TestSmtpServer } from './smtp';

export const testLog = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Email timings shrunk so retries, sweeps and takeovers happen within a test. */
export const FAST_ENV: Env = {
  EMAIL_RETRY_BASE_MS: '50',
  SWEEP_INTERVAL_MS: '200',
  SMTP_TIMEOUT_MS: '2000',
  WEBHOOK_TIMEOUT_MS: '2000',
  JOB_LOCK_MS: '3000',
  RATE_LIMIT_PER_SECOND: '100000',
  RATE_LIMIT_BURST: '100000',
  SHUTDOWN_DRAIN_DELAY_MS: '0',
};

/**
 * Webhook timings: loopback receivers need the address rule lifted, and the retry schedule and
 * timeout are shrunk so retries happen within a test (200 ms between attempts; WEBHOOK_TIMEOUT_MS
 * 3 s instead of 15 s; the job lock must outlast it).
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

/** The producer side the api has (queues, event service), for publishing and inspecting jobs from the test. */
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
  const jobs = createJobProducer({ queues, redis, settings: t.config, log: testLog });
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

export interface Stack {
  t: TestEnvironment;
  smtp: TestSmtpServer;
  /** In-process roles (startStack). */
  api?: RunningApi;
  worker?: RunningWorker;
  /** Separate processes (startProcessStack); a test may replace the worker after killing it. */
  apiProcess?: RoleProcess;
  workerProcess?: RoleProcess;
  base: string;
  /** The worker's health and metrics port. */
  workerPort?: number;
  key: string;
  /** The queues and event service, opened on first use and closed by stop(). */
  publisher(): Publisher;
  /** A request with the stack's key. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** call() that expects a 2xx answer and returns its body. */
  json<T = any>(method: string, path: string, body?: unknown): Promise<T>; // eslint-disable-line @typescript-eslint/no-explicit-any
  createEndpoint(body: Record<string, unknown>): Promise<{ id: string; secret: string; url: string }>;
  publish(type: string, payload?: Record<string, unknown>): Promise<{ id: string; deliveries: number }>;
  stop(): Promise<void>;
}

export interface StackOptions {
  env?: Env;
  /** Start the worker too (default true). */
  worker?: boolean;
  smtp?: SmtpServerSettings;
  /** Scopes of the stack's key (default admin). */
  scopes?: string[];
  /** The in-process worker's logger (default testLog), to read what it logs. */
  workerLog?: Logger;
  /** The in-process api's logger (default testLog), to read what it logs. */
  apiLog?: Logger;
}

async function prepare(label: string, opts: StackOptions): Promise<{ t: TestEnvironment; smtp: TestSmtpServer; key: string }> {
  const smtp = await startSmtpServer(opts.smtp);
  try {
    const t = await createTestEnvironment(label, { SMTP_URL: smtp.url, ...opts.env });
    const { key } = await createApiKeyService({ db: t.db }).create({ name: `test ${label}`, scopes: opts.scopes ?? ['admin'] });
    return { t, smtp, key };
  } catch (err) {
    await smtp.close();
    throw err;
  }
}

function assemble(parts: { t: TestEnvironment; smtp: TestSmtpServer; key: string; base: string } & Partial<Stack>, stopRoles: () => Promise<void>): Stack {
  const { t, smtp, key, base } = parts;
  let publisher: Publisher | undefined;
  const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => request(base, key, method, path, body, headers);
  const json = async (method: string, path: string, body?: unknown) => {
    const res = await call(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status}: ${res.text}`);
    return res.body;
  };
  return {
    ...parts,
    publisher: () => (publisher ??= openPublisher(t)),
    call,
    json,
    createEndpoint: (body) => json('POST', '/v1/webhook-endpoints', body),
    publish: (type, payload = {}) => json('POST', '/v1/events', { type, payload }),
    async stop() {
      await stopRoles();
      await publisher?.close();
      await smtp.close();
      await t.cleanup();
    },
  };
}

/** The api (and by default the worker) in this process. */
export async function startStack(label: string, opts: StackOptions = {}): Promise<Stack> {
  const { t, smtp, key } = await prepare(label, opts);
  const api = await startApi(t.config, opts.apiLog ?? testLog);
  const worker = opts.worker === false ? undefined : await startWorker(t.config, opts.workerLog ?? testLog);
  const base = `http://127.0.0.1:${api.port}`;
  // Ready means PostgreSQL and Redis answered: before that the rate limiter would fail open.
  await waitForHttp(`${base}/health/ready`);
  return assemble({ t, smtp, key, base, api, worker, workerPort: worker?.port }, async () => {
    await worker?.lifecycle.shutdown('test end');
    await api.lifecycle.shutdown('test end');
  });
}

/** The api and (by default) the worker as separate `easeemail` processes (the real CLI), as deployed. */
export async function startProcessStack(label: string, opts: StackOptions = {}): Promise<Stack> {
  const { t, smtp, key } = await prepare(label, opts);
  const apiProcess = await startRole('api', t.env);
  const workerProcess = opts.worker === false ? undefined : await startRole('worker', t.env);
  const stack: Stack = assemble({ t, smtp, key, base: apiProcess.url, apiProcess, workerProcess, workerPort: workerProcess?.port }, async () => {
    if (stack.workerProcess) await stopProcess(stack.workerProcess.cli);
    await stopProcess(apiProcess.cli);
  });
  return stack;
}

/** Polls an email until it has the status; returns its API view. */
export function emailReaches(stack: Stack, id: string, status: string, timeoutMs?: number) {
  return eventually(
    async () => {
      const res = await stack.call('GET', `/v1/emails/${id}`);
      return res.body?.status === status ? res.body : undefined;
    },
    `email ${id} to be ${status}`,
    timeoutMs,
  );
}

/** Waits until the SMTP server has received the email with this id (X-EaseEmail-Id). */
export function receivedEmail(stack: Stack, id: string, timeoutMs?: number) {
  return eventually(async () => stack.smtp.messages.find((m) => m.emailId === id), `email ${id} to arrive`, timeoutMs);
}

/**
 * Positive evidence before an absence check: every job has run to its end (completed, failed,
 * or removed on completion) and none is waiting, delayed or active, so nothing it could still
 * send is on its way.
 */
export function jobsFinished(queues: Queues, kind: 'email' | 'emailBatch' | 'webhook', ids: string[], timeoutMs?: number) {
  return eventually(
    async () => {
      const states = await Promise.all(ids.map((id) => queues[kind].getJobState(id)));
      return states.every((s) => s === 'completed' || s === 'failed' || s === 'unknown') ? true : undefined;
    },
    `${ids.length} ${kind} job(s) to finish`,
    timeoutMs,
  );
}

/**
 * jobsFinished for emails: their own jobs, and the batch jobs of those that came in a batch
 * request (emails.deliveryBatchId), which have no job of their own until one hands them on.
 */
export async function emailJobsFinished(stack: Stack, ids: string[], timeoutMs?: number) {
  const rows = await stack.t.db.email.findMany({ where: { id: { in: ids } }, select: { deliveryBatchId: true } });
  const batches = [...new Set(rows.flatMap((r) => (r.deliveryBatchId ? [r.deliveryBatchId] : [])))];
  const { queues } = stack.publisher();
  await jobsFinished(queues, 'emailBatch', batches, timeoutMs);
  await jobsFinished(queues, 'email', ids, timeoutMs);
}
