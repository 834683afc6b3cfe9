/**
 * The deliverability suites' stack: a private schema and Redis prefix, the api, the worker and
 * the inbound role in this process (real config loader, BOUNCE_DOMAIN set), a webhook receiver
 * subscribed to every event, and an SMTP server for the worker: the test SMTP server, or a real
 * MTA that needs the inbound port first (`mta`).
 */
import { startApi, type RunningApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import { loadConfig, type Env } from '../../app/config';
import { verpFromConfig, type Verp } from '../../app/deliverability';
import { startInbound, type RunningInbound } from '../../app/inbound';
import { createLogger } from '../../app/log';
import { startWorker, type RunningWorker } from '../../app/worker';
import { eventually } from '../support/eventually';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';

export { eventually };
import { startReceiver, type Receiver } from '../support/receiver';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp';
import { connectSmtp, type Reply } from './smtp-client';

export const BOUNCE_DOMAIN = 'bounces.easeemail.test';
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export const DELIVERABILITY_ENV: Env = {
  BOUNCE_DOMAIN,
  INBOUND_PORT: '0',
  INBOUND_HEALTH_PORT: '0',
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_RETRY_SCHEDULE: '0.2,0.2,0.2',
  EMAIL_RETRY_BASE_MS: '50',
  SWEEP_INTERVAL_MS: '200',
  SMTP_TIMEOUT_MS: '3000',
  WEBHOOK_TIMEOUT_MS: '3000',
  JOB_LOCK_MS: '10000',
  RATE_LIMIT_PER_SECOND: '100000',
  RATE_LIMIT_BURST: '100000',
  SHUTDOWN_DRAIN_DELAY_MS: '0',
  SHUTDOWN_TIMEOUT_MS: '8000',
};

export interface ApiResponse {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface DeliverabilityStack {
  t: TestEnvironment;
  api: RunningApi;
  worker: RunningWorker;
  inbound: RunningInbound;
  receiver: Receiver;
  /** The test SMTP server, unless an MTA was given. */
  smtp?: TestSmtpServer;
  verp: Verp;
  key: string;
  call(method: string, path: string, body?: unknown, key?: string): Promise<ApiResponse>;
  /** Accepts an email and returns its id. */
  send(body: Record<string, unknown>): Promise<string>;
  /** Polls GET /v1/emails/{id} until `ready` holds for it. */
  email(id: string, ready: (email: any) => boolean, what: string, timeoutMs?: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Webhook events of `type` received so far, as parsed bodies. */
  events(type: string): any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  waitForEvent(type: string, matches: (data: any) => boolean, timeoutMs?: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** One message to the inbound role over SMTP: MAIL FROM:<>, RCPT TO each, DATA. */
  deliverReport(rcptTo: string[], raw: Buffer): Promise<Reply>;
  stop(): Promise<void>;
}

export async function startDeliverabilityStack(
  label: string,
  opts: { env?: Env; mta?: (inboundPort: number) => Promise<{ url: string; stop(): Promise<void> }> } = {},
): Promise<DeliverabilityStack> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const t = await createTestEnvironment(label, { ...DELIVERABILITY_ENV, ...opts.env });
    cleanups.push(() => t.cleanup());
    const inbound = await startInbound(t.config, log);
    cleanups.push(() => inbound.lifecycle.shutdown('test'));
    let smtp: TestSmtpServer | undefined;
    let smtpUrl: string;
    if (opts.mta) {
      const mta = await opts.mta(inbound.smtpPort);
      cleanups.push(() => mta.stop());
      smtpUrl = mta.url;
    } else {
      smtp = await startSmtpServer();
      cleanups.push(() => smtp!.close());
      smtpUrl = smtp.url;
    }
    const config = loadConfig({ ...t.env, SMTP_URL: smtpUrl });
    const api = await startApi(config, log);
    cleanups.push(() => api.lifecycle.shutdown('test'));
    const worker = await startWorker(config, log);
    cleanups.push(() => worker.lifecycle.shutdown('test'));
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const { key } = await createApiKeyService({ db: t.db }).create({ name: `test ${label}`, scopes: ['admin'] });
    const base = `http://127.0.0.1:${api.port}`;

    const call = async (method: string, path: string, body?: unknown, withKey = key): Promise<ApiResponse> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${withKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    const endpoint = await call('POST', '/v1/webhook-endpoints', { url: `${receiver.url}/hooks` });
    if (endpoint.status !== 201) throw new Error(`could not create the webhook endpoint: ${JSON.stringify(endpoint.body)}`);
    const events = (type: string) => receiver.requests.map((r) => JSON.parse(r.body)).filter((e) => e.type === type);

    return {
      t,
      api,
      worker,
      inbound,
      receiver,
      smtp,
      verp: verpFromConfig(t.config)!,
      key,
      call,
      async send(body) {
        const res = await call('POST', '/v1/emails', body);
        if (res.status !== 202) throw new Error(`email not accepted: ${res.status} ${JSON.stringify(res.body)}`);
        return res.body.id;
      },
      email: (id, ready, what, timeoutMs) =>
        eventually(
          async () => {
            const res = await call('GET', `/v1/emails/${id}`);
            return res.status === 200 && ready(res.body) ? res.body : undefined;
          },
          `email ${id}: ${what}`,
          timeoutMs,
        ),
      events,
      waitForEvent: (type, matches, timeoutMs) => eventually(async () => events(type).find((e) => matches(e.data)), `webhook event ${type}`, timeoutMs),
      async deliverReport(rcptTo, raw) {
        const c = await connectSmtp(inbound.smtpPort);
        try {
          await c.command('EHLO mta.example.net');
          await c.command('MAIL FROM:<>');
          for (const r of rcptTo) {
            const reply = await c.command(`RCPT TO:<${r}>`);
            if (reply.code !== 250) return reply;
          }
          return await c.data(raw);
        } finally {
          await c.quit();
        }
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
