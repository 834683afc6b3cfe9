/**
 * The outbox rule for webhook deliveries: a delivery committed while its job could not be
 * enqueued (Redis down), or whose job ended in BullMQ's failed set, is enqueued again by the
 * worker's sweep and delivered.
 */
import { Worker } from 'bullmq';
import { QUEUE_NAMES, workerConnectionOptions } from '../../app/queue';
import { recordEvent } from '../../app/webhooks/events';
import { createWebhookSweep } from '../../app/webhooks/sweeper';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { privateRedis, type PrivateRedis } from '../support/redis-server';
import { startReceiver, type Receiver } from '../support/receiver';
import { eventually } from '../support/eventually';
import { FAST_DELIVERY_ENV, openPublisher, startStack, type Publisher, type Stack } from '../support/stack';
import { DEFAULT_APPLICATION_ID } from '../../app/applications';

jest.setTimeout(60_000);

describe('the sweep', () => {
  let t: TestEnvironment;
  let publisher: Publisher;
  beforeAll(async () => {
    t = await createTestEnvironment('wh_sweep');
    publisher = openPublisher(t);
  });
  afterAll(async () => {
    await publisher?.close();
    await t?.cleanup();
  });

  it('enqueues overdue pending deliveries that have no job, once, and replaces a failed job; leaves the rest alone', async () => {
    const { queues, jobs } = publisher;
    await t.db.webhookEndpoint.createMany({
      data: [1, 2, 3].map((i) => ({ url: `https://e${i}.example.com/`, eventTypes: ['sweep.me'], secretEncrypted: 'unused' })),
    });
    const { deliveryIds } = await recordEvent(t.db, { applicationId: DEFAULT_APPLICATION_ID, type: 'sweep.me', payload: {} });
    expect(deliveryIds).toHaveLength(3);
    const [lost, failed, notDue] = deliveryIds;
    await t.db.webhookDelivery.updateMany({ where: { id: { in: [lost, failed] } }, data: { nextAttemptAt: new Date(Date.now() - 60_000) } });
    await t.db.webhookDelivery.update({ where: { id: notDue }, data: { nextAttemptAt: new Date(Date.now() + 60_000) } });

    // A job for `failed` that ends in the failed set (an unexpected processor error, no attempts left).
    await queues.webhook.add('deliver', { deliveryId: failed }, { jobId: failed });
    const failing = new Worker(QUEUE_NAMES.webhook, async () => { throw new Error('database unreachable'); }, { connection: workerConnectionOptions(t.config.redisUrl), prefix: t.redisPrefix });
    await eventually(async () => ((await queues.webhook.getJobState(failed)) === 'failed' ? true : undefined), 'the job in the failed set');
    await failing.close();

    const sweep = createWebhookSweep({ db: t.db, jobs, graceMs: 5_000 });
    expect(await sweep.run()).toBe(2);
    expect(await queues.webhook.getJobState(lost)).toBe('waiting');
    expect(await queues.webhook.getJobState(failed)).toBe('waiting');
    expect(await queues.webhook.getJobState(notDue)).toBe('unknown');
    expect(await sweep.run()).toBe(0);
    expect(await queues.webhook.count()).toBe(2);
  });
});

describe('a delivery accepted while Redis was down', () => {
  let redisServer: PrivateRedis;
  let s: Stack;
  let rx: Receiver;
  beforeAll(async () => {
    redisServer = await privateRedis();
    await redisServer.start();
    rx = await startReceiver();
    s = await startStack('wh_outbox', { env: { ...FAST_DELIVERY_ENV, REDIS_URL: redisServer.url, SWEEP_INTERVAL_MS: '500' } });
  });
  afterAll(async () => {
    await s?.stop();
    await redisServer?.stop();
    await rx?.close();
  });

  it('is accepted (202) and delivered by the sweep once Redis is back', async () => {
    await s.createEndpoint({ url: rx.url, eventTypes: ['outbox.test'] });
    await redisServer.stop();
    const res = await s.call('POST', '/v1/events', { type: 'outbox.test', payload: { n: 1 } });
    expect(res.status).toBe(202);
    const { id } = res.body as { id: string };
    expect(await s.t.db.webhookDelivery.count({ where: { eventId: id, status: 'pending' } })).toBe(1);
    await redisServer.start();
    const [req] = await rx.waitFor(1, 30_000);
    expect(JSON.parse(req.body)).toMatchObject({ id, type: 'outbox.test', data: { n: 1 } });
    await eventually(async () => ((await s.t.db.webhookDelivery.findFirst({ where: { eventId: id } }))?.status === 'delivered' ? true : undefined), 'the delivery recorded');
  });
});

