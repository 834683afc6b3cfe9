/**
 * Recover after an outage, end to end (the api and worker in this process, PostgreSQL, Redis, a
 * loopback receiver): 1,000 deliveries fail while the endpoint is down; once it is back, one
 * POST …/recover re-sends each exactly once, in event order, signed as always; a second recover
 * of the same window while the first runs is refused; the task's status counts them.
 */
import { DEFAULT_APPLICATION_ID } from '../../app/applications';
import { Webhook } from 'standardwebhooks';
import { eventually } from '../support/eventually';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, startStack, type Stack } from '../support/stack';

jest.setTimeout(240_000);

const N = 1_000;
let s: Stack;
let rx: Receiver;
beforeAll(async () => {
  // One retry 50 ms after the first attempt: 1,000 deliveries fail within seconds.
  s = await startStack('wh_recover', { env: { ...FAST_DELIVERY_ENV, WEBHOOK_RETRY_SCHEDULE: '0.05' } });
  rx = await startReceiver({ answer: { status: 503, body: 'down for maintenance' } });
});
afterAll(async () => {
  await s?.stop();
  await rx?.close();
});

it(`re-sends ${N} failed deliveries once each, in order, verifiable; a second recover meanwhile is refused`, async () => {
  const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['recover.me'] });
  const since = new Date(Date.now() - 1_000).toISOString();
  const events = s.publisher().events;
  for (let i = 0; i < N; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, k) => events.publish({ applicationId: DEFAULT_APPLICATION_ID, type: 'recover.me', payload: { i: i + k }, apiKeyId: null })));
  }
  await eventually(
    async () => ((await s.t.db.webhookDelivery.count({ where: { endpointId: ep.id, status: 'failed' } })) === N ? true : undefined),
    `${N} deliveries to fail`,
    120_000,
  );
  const failedIds = new Set((await s.t.db.webhookDelivery.findMany({ where: { endpointId: ep.id }, select: { id: true } })).map((d) => d.id));
  const requestsWhileDown = rx.count();
  expect(requestsWhileDown).toBe(2 * N);

  // The endpoint is back.
  rx.setDefault({ status: 204 });
  const started = Date.now();
  const first = await s.call('POST', `/v1/webhook-endpoints/${ep.id}/recover`, { since });
  expect(first.status).toBe(202);
  expect(first.headers.get('location')).toBe(`/v1/webhook-endpoints/${ep.id}/recoveries/${first.body.id}`);
  expect(first.body).toMatchObject({ status: 'queued', endpointId: ep.id, done: 0, failed: 0 });

  const second = await s.call('POST', `/v1/webhook-endpoints/${ep.id}/recover`, { since });
  expect(second.status).toBe(409);
  expect(second.body.detail).toContain(first.body.id);

  const finished = await eventually(
    async () => {
      const task = await s.json(`GET`, `/v1/webhook-endpoints/${ep.id}/recoveries/${first.body.id}`);
      return task.status === 'done' || task.status === 'failed' ? task : undefined;
    },
    'the recovery to finish',
    180_000,
  );
  const seconds = (Date.now() - started) / 1000;
  expect(finished).toMatchObject({ status: 'done', total: N, done: N, failed: 0, queued: 0, error: null });

  const resent = rx.requests.slice(requestsWhileDown);
  console.log(`recover: ${N} deliveries re-sent in ${seconds.toFixed(1)} s (${(N / seconds).toFixed(0)}/s, one at a time in event order)`);
  expect(resent).toHaveLength(N);
  const ids = resent.map((r) => r.headers['webhook-id']);
  expect(new Set(ids)).toEqual(failedIds);
  const verifier = new Webhook(ep.secret);
  const bodies = resent.map((r) => verifier.verify(r.body, r.headers) as { timestamp: string; data: { i: number } });
  const times = bodies.map((b) => Date.parse(b.timestamp));
  expect(times).toEqual([...times].sort((a, b) => a - b));
  expect(new Set(bodies.map((b) => b.data.i)).size).toBe(N);

  // Every delivery is delivered now, by one more attempt.
  expect(await s.t.db.webhookDelivery.groupBy({ by: ['status', 'attemptCount'], where: { endpointId: ep.id }, _count: true })).toEqual([
    { status: 'delivered', attemptCount: 3, _count: N },
  ]);
  // A later recover of the same window finds nothing left to send.
  const again = await s.json('POST', `/v1/webhook-endpoints/${ep.id}/recover`, { since });
  const empty = await eventually(async () => {
    const task = await s.json('GET', `/v1/webhook-endpoints/${ep.id}/recoveries/${again.id}`);
    return task.status === 'done' ? task : undefined;
  }, 'the empty recovery to finish');
  expect(empty).toMatchObject({ total: 0, done: 0 });
  expect(rx.count()).toBe(requestsWhileDown + N);
});

it('refuses a disabled endpoint, a bad window and unknown ids', async () => {
  const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['recover.other'], enabled: false });
  const disabled = await s.call('POST', `/v1/webhook-endpoints/${ep.id}/recover`, { since: new Date(Date.now() - 60_000).toISOString() });
  expect(disabled.status).toBe(409);
  expect(disabled.body.detail).toMatch(/enable it first/);
  await s.json('PATCH', `/v1/webhook-endpoints/${ep.id}`, { enabled: true });
  for (const body of [{}, { since: 'yesterday' }, { since: '2026-11-30T10:00:00Z', until: '2026-11-30T09:00:00Z' }, { since: '2026-11-30T10:00:00Z', extra: 1 }]) {
    const res = await s.call('POST', `/v1/webhook-endpoints/${ep.id}/recover`, body);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  }
  expect(await s.t.db.webhookRecovery.count({ where: { endpointId: ep.id } })).toBe(0);
  const missing = '00000000-0000-4000-8000-00000000dead';
  expect((await s.call('POST', `/v1/webhook-endpoints/${missing}/recover`, { since: '2026-11-30T10:00:00Z' })).status).toBe(404);
  expect((await s.call('GET', `/v1/webhook-endpoints/${ep.id}/recoveries/${missing}`)).status).toBe(404);
});
