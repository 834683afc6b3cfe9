/**
 * The outbound guard at delivery time, with the address rule ON. Every name used here resolves
 * to loopback (`localhost`, or a test resolver mapping a made-up name to 127.0.0.1 / ::1), so the
 * only packets that could leave go to loopback, and the assertion is that none do: the receivers
 * get nothing.
 */
import type dns from 'node:dns';
import { Worker } from 'bullmq';
import { createApiKeyService } from '../../app/auth/api-keys';
import { Pool } from 'pg';
import { statementPoolSettings } from '../../app/db/connection';
import { createMetrics } from '../../app/http/metrics';
import { QUEUE_NAMES, workerConnectionOptions } from '../../app/queue';
import type { LookupFunction } from '../../app/webhooks/guard';
import { createEndpointService } from '../../app/webhooks/endpoints';
import { createWebhookMetrics } from '../../app/webhooks/metrics';
import { createOperationalEvents } from '../../app/webhooks/operational-events';
import { createWebhookProcessor, WEBHOOK_POOL_SIZE } from '../../app/webhooks/processor';
import { createEndpointRateLimiter } from '../../app/webhooks/rate-limiter';
import { createSecretBox } from '../../app/webhooks/secrets';
import { createWebhookSender } from '../../app/webhooks/sender';
import { startApi, type RunningApi } from '../../app/api';
import { startWorker, type RunningWorker } from '../../app/worker';
import { loadConfig } from '../../app/config';
import { eventually } from '../support/eventually';
import { request } from '../support/http';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, jobsFinished, openPublisher, testLog as log } from '../support/stack';
import { DEFAULT_APPLICATION_ID } from '../../app/applications';

jest.setTimeout(30_000);

/** A resolver for made-up names; anything else is "not found" (no real DNS query is made). */
function testResolver(answers: Record<string, dns.LookupAddress[]>, calls: string[] = []): LookupFunction {
  return (hostname, _options, callback) => {
    calls.push(hostname);
    const a = answers[hostname];
    if (!a) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, a);
  };
}

const body = JSON.stringify({ type: 'guard.test', data: {} });
const headers = { 'webhook-id': 'msg_guard' };

describe('the sender with the address rule on', () => {
  let rx: Receiver;
  beforeAll(async () => {
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx.close();
  });

  it('refuses localhost by name, before any look-up, and sends nothing', async () => {
    const calls: string[] = [];
    const sender = createWebhookSender({ timeoutMs: 2_000, allowPrivateNetworks: false, lookup: testResolver({}, calls) });
    try {
      const r = await sender.send({ url: `http://localhost:${rx.port}/hook`, headers, body });
      expect(r).toMatchObject({ outcome: 'refused', error: 'refused: host localhost is a loopback name; set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow private destinations' });
    } finally {
      await sender.close();
    }
    expect(calls).toEqual([]);
    expect(rx.count()).toBe(0);
  });

  it.each([
    ['loopback.guard.test', [{ address: '127.0.0.1', family: 4 }], 'loopback'],
    ['v6.guard.test', [{ address: '::1', family: 6 }], 'loopback'],
    ['mapped.guard.test', [{ address: '::ffff:127.0.0.1', family: 6 }], 'IPv4-mapped IPv6'],
    ['two.guard.test', [{ address: '127.0.0.2', family: 4 }, { address: '::1', family: 6 }], 'loopback'],
  ])('refuses %s, which resolves to loopback, and sends nothing', async (host, answer, label) => {
    const sender = createWebhookSender({ timeoutMs: 2_000, allowPrivateNetworks: false, lookup: testResolver({ [host]: answer as dns.LookupAddress[] }) });
    try {
      const r = await sender.send({ url: `http://${host}:${rx.port}/hook`, headers, body });
      expect(r.outcome).toBe('refused');
      expect(r.error).toBe(`refused: ${host} resolves to ${answer[0].address}, a ${label} address; set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow private destinations`);
    } finally {
      await sender.close();
    }
    expect(rx.count()).toBe(0);
  });

  it('refuses literal private addresses stored before the rule was turned on, without connecting', async () => {
    const sender = createWebhookSender({ timeoutMs: 2_000, allowPrivateNetworks: false });
    try {
      for (const url of [`http://127.0.0.1:${rx.port}/`, `http://127.1:${rx.port}/`, `http://[::1]:${rx.port}/`, `http://[::ffff:127.0.0.1]:${rx.port}/`]) {
        expect(await sender.send({ url, headers, body })).toMatchObject({ outcome: 'refused', error: expect.stringMatching(/^refused: host .* address/) });
      }
    } finally {
      await sender.close();
    }
    expect(rx.count()).toBe(0);
  });

  it('connects to the very address the guard checked: one resolution per connection, no second look-up to rebind', async () => {
    const calls: string[] = [];
    // Allowed here only so the connection may happen (to loopback); what is checked is that the
    // socket uses the resolver's answer and asks only once.
    const sender = createWebhookSender({ timeoutMs: 2_000, allowPrivateNetworks: true, lookup: testResolver({ 'rebind.guard.test': [{ address: '127.0.0.1', family: 4 }] }, calls) });
    try {
      const r = await sender.send({ url: `http://rebind.guard.test:${rx.port}/x`, headers, body });
      expect(r.outcome).toBe('success');
    } finally {
      await sender.close();
    }
    expect(calls).toEqual(['rebind.guard.test']);
    expect(rx.requests[0].remoteAddress).toMatch(/127\.0\.0\.1$/);
    expect(rx.requests[0].headers.host).toBe(`rebind.guard.test:${rx.port}`);
  });
});

describe('delivery with the address rule on', () => {
  let t: TestEnvironment;
  let api: RunningApi;
  let worker: RunningWorker;
  let rx: Receiver;
  let key: string;

  // The endpoint was created while private networks were allowed (an api with the rule off, as in
  // local work); the worker runs with the rule on.
  beforeAll(async () => {
    rx = await startReceiver();
    t = await createTestEnvironment('wh_guard', { ...FAST_DELIVERY_ENV, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' });
    api = await startApi(loadConfig({ ...t.env, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }), log);
    worker = await startWorker(t.config, log);
    ({ key } = await createApiKeyService({ db: t.db }).create({ name: 'guard', scopes: ['admin'] }));
  });
  afterAll(async () => {
    await worker?.lifecycle.shutdown('test end');
    await api?.lifecycle.shutdown('test end');
    await rx?.close();
    await t?.cleanup();
  });

  const post = (path: string, payload: unknown) => request(`http://127.0.0.1:${api.port}`, key, 'POST', path, payload);

  it('records the refusal of a localhost endpoint as a failed attempt with a clear error, does not retry, and sends nothing', async () => {
    const ep = await post('/v1/webhook-endpoints', { url: `http://localhost:${rx.port}/hook`, eventTypes: ['guard.delivery'] });
    expect(ep.status).toBe(201);
    const { id: endpointId } = ep.body as { id: string };
    const published = (await post('/v1/events', { type: 'guard.delivery', payload: { n: 1 } })).body as { id: string };
    const delivery = await eventually(async () => {
      const d = await t.db.webhookDelivery.findFirst({ where: { eventId: published.id }, include: { attempts: true } });
      return d?.status === 'failed' ? d : undefined;
    }, 'the delivery failed');
    expect(delivery.attemptCount).toBe(1);
    expect(delivery.nextAttemptAt).toBeNull();
    expect(delivery.attempts[0]).toMatchObject({ statusCode: null, error: expect.stringMatching(/^refused: host localhost is a loopback name/) });
    expect((await t.db.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId } })).failingSince).not.toBeNull();
    // Its job has ended rather than being parked for a retry (which would come after 200 ms).
    const publisher = openPublisher(t);
    try {
      await jobsFinished(publisher.queues, 'webhook', [delivery.id]);
    } finally {
      await publisher.close();
    }
    expect(await t.db.webhookAttempt.count({ where: { deliveryId: delivery.id } })).toBe(1);
    expect(rx.count()).toBe(0);
  });
});

describe('a processor whose sender resolves a test name to loopback', () => {
  let t: TestEnvironment;
  let rx: Receiver;
  beforeAll(async () => {
    rx = await startReceiver();
    t = await createTestEnvironment('wh_guard_name', { ...FAST_DELIVERY_ENV, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' });
  });
  afterAll(async () => {
    await rx?.close();
    await t?.cleanup();
  });

  it('refuses at delivery the name it could not judge at creation', async () => {
    const endpoints = createEndpointService({ db: t.db, secrets: createSecretBox(t.config.encryptionKey!) });
    // Accepted at creation: a name is only judged once resolved.
    const ep = await endpoints.create(DEFAULT_APPLICATION_ID, { url: `http://hooks.guard.test:${rx.port}/in`, eventTypes: ['guard.name'], enabled: true });
    const publisher = openPublisher(t);
    const sender = createWebhookSender({ timeoutMs: 2_000, allowPrivateNetworks: false, lookup: testResolver({ 'hooks.guard.test': [{ address: '127.0.0.1', family: 4 }] }) });
    const pool = new Pool(statementPoolSettings(t.config.databaseUrl, WEBHOOK_POOL_SIZE));
    const processor = createWebhookProcessor({
      db: t.db,
      pool,
      log,
      secrets: createSecretBox(t.config.encryptionKey!),
      sender,
      metrics: createWebhookMetrics(createMetrics('worker').registry, t.db),
      rateLimiter: createEndpointRateLimiter({ redis: publisher.redis, prefix: t.redisPrefix }),
      operational: createOperationalEvents({ db: t.db, jobs: publisher.jobs, log }),
      settings: t.config.webhooks,
      jobLockMs: t.config.jobLockMs,
    });
    const worker = new Worker(QUEUE_NAMES.webhook, (job) => processor.process(job), { connection: workerConnectionOptions(t.config.redisUrl), prefix: t.redisPrefix });
    try {
      const published = await publisher.events.publish({ applicationId: DEFAULT_APPLICATION_ID, type: 'guard.name', payload: {}, apiKeyId: null });
      const d = await eventually(async () => {
        const row = await t.db.webhookDelivery.findFirst({ where: { eventId: published.id }, include: { attempts: true } });
        return row?.status === 'failed' ? row : undefined;
      }, 'the delivery failed');
      expect(d.attempts[0].error).toMatch(/^refused: hooks\.guard\.test resolves to 127\.0\.0\.1, a loopback address/);
      expect(d.endpointId).toBe(ep.id);
      expect(rx.count()).toBe(0);
    } finally {
      await worker.close();
      await sender.close();
      await pool.end();
      await publisher.close();
    }
  });
});
