/**
 * The email suites' stack: a private schema and Redis prefix, a test SMTP server, an API key,
 * and the api (and optionally the worker) running in this process with the real config loader.
 * Suites about processes (SIGKILL, Redis outages) start the CLI instead (test/support/processes).
 */
import { startApi, type RunningApi } from '../../app/api';
import type { Env } from '../../app/config';
import { createApiKeyService } from '../../app/auth/api-keys';
import { createLogger } from '../../app/log';
import { startWorker, type RunningWorker } from '../../app/worker';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { waitForHttp } from '../support/processes';
import { startSmtpServer, type SmtpServerSettings, type TestSmtpServer } from '../support/smtp';

export const silentLog = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Short timings so retries, sweeps and takeovers happen within a test. */
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

export interface EmailStack {
  t: TestEnvironment;
  smtp: TestSmtpServer;
  api: RunningApi;
  worker?: RunningWorker;
  base: string;
  key: string;
  /** JSON request with the stack's key; returns status, headers and parsed body. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  stop(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function request(base: string, key: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

export async function startEmailStack(
  label: string,
  opts: { env?: Env; worker?: boolean; smtp?: SmtpServerSettings; scopes?: string[] } = {},
): Promise<EmailStack> {
  const smtp = await startSmtpServer(opts.smtp);
  const t = await createTestEnvironment(label, { ...FAST_ENV, SMTP_URL: smtp.url, ...opts.env }).catch(async (err) => {
    await smtp.close();
    throw err;
  });
  const { key } = await createApiKeyService({ db: t.db }).create({ name: 'test', scopes: opts.scopes ?? ['admin'] });
  const api = await startApi(t.config, silentLog);
  const worker = opts.worker === false ? undefined : await startWorker(t.config, silentLog);
  const base = `http://127.0.0.1:${api.port}`;
  // Ready means PostgreSQL and Redis answered: before that the rate limiter would fail open.
  await waitForHttp(`${base}/health/ready`);
  return {
    t,
    smtp,
    api,
    worker,
    base,
    key,
    call: (method, path, body, headers) => request(base, key, method, path, body, headers),
    async stop() {
      await worker?.lifecycle.shutdown('test end');
      await api.lifecycle.shutdown('test end');
      await smtp.close();
      await t.cleanup();
    },
  };
}

/** Polls until `check` returns a value other than undefined. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls an email until it has the status. */
export function emailReaches(stack: EmailStack, id: string, status: string, timeoutMs?: number) {
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
export function receivedEmail(stack: EmailStack, id: string, timeoutMs?: number) {
  return eventually(async () => stack.smtp.messages.find((m) => m.emailId === id), `email ${id} to arrive`, timeoutMs);
}
