/**
 * Operational events through the real fan-out: an endpoint disabled by a 410 and a delivery that
 * used its whole schedule are announced to the endpoints subscribed to webhook.endpoint.disabled
 * and webhook.delivery.exhausted, never to the endpoint they are about, never to endpoints that
 * take "every type", and never about the delivery of an operational event itself.
 */
import { Webhook } from 'standardwebhooks';
import { receiverPool, type Receiver } from '../support/receiver';
import { eventually } from '../support/eventually';
import { FAST_DELIVERY_ENV, startStack, type Stack } from '../support/stack';

jest.setTimeout(60_000);

let s: Stack;
const receivers = receiverPool();
const receiver = receivers.start;
const OPS = ['webhook.endpoint.disabled', 'webhook.delivery.exhausted'];

beforeAll(async () => {
  s = await startStack('wh_ops_events', { env: FAST_DELIVERY_ENV });
});
afterAll(async () => {
  await s?.stop();
  await receivers.closeAll();
});

const bodies = (rx: Receiver) => rx.requests.map((r) => JSON.parse(r.body) as { id: string; type: string; data: Record<string, unknown> });

it('an endpoint disabled by 410 Gone is announced to another endpoint, not to itself', async () => {
  const gone = await receiver({ answer: { status: 410 } });
  const ops = await receiver();
  const goneEp = await s.createEndpoint({ url: gone.url, eventTypes: ['ops.gone', ...OPS] });
  const opsEp = await s.createEndpoint({ url: ops.url, eventTypes: OPS });
  const everything = await receiver();
  const everythingEp = await s.createEndpoint({ url: everything.url, eventTypes: [] });

  await s.publish('ops.gone', { n: 1 });
  const [req] = await ops.waitFor(1);
  const body = new Webhook(opsEp.secret).verify(req.body, req.headers) as { id: string; type: string; data: Record<string, unknown> };
  expect(body.type).toBe('webhook.endpoint.disabled');
  expect(body.data).toMatchObject({ endpointId: goneEp.id, url: gone.url + '/', reason: expect.stringMatching(/^automatic: the receiver answered 410 Gone/) });
  const endpoint = await s.json<{ enabled: boolean }>('GET', `/v1/webhook-endpoints/${goneEp.id}`);
  expect(endpoint.enabled).toBe(false);

  // The event's fan-out went to the subscriber only: not the disabled endpoint, not the "every type" one.
  const event = await s.json<{ deliveries: { endpointId: string }[] }>('GET', `/v1/events/${body.id}`);
  expect(event.deliveries.map((d) => d.endpointId)).toEqual([opsEp.id]);
  expect(gone.requests.every((r) => JSON.parse(r.body).type === 'ops.gone')).toBe(true);
  // The "every type" endpoint got the application's own event, and no operational one.
  await everything.waitFor(1);
  expect(bodies(everything).map((b) => b.type)).toEqual(['ops.gone']);
  expect(everythingEp.id).toBeDefined();
});

it('a delivery that used its whole schedule is announced, never to the failing endpoint, with no event about that event', async () => {
  const failing = await receiver({ answer: { status: 500, body: 'down' } });
  const ops = await receiver();
  // The failing endpoint also subscribes to the operational types: it must still not get news about itself.
  const failingEp = await s.createEndpoint({ url: failing.url, eventTypes: ['ops.exhaust', ...OPS] });
  const opsEp = await s.createEndpoint({ url: ops.url, eventTypes: ['webhook.delivery.exhausted'] });

  const published = await s.publish('ops.exhaust', { n: 2 });
  const [req] = await ops.waitFor(1, 20_000);
  const body = new Webhook(opsEp.secret).verify(req.body, req.headers) as { id: string; type: string; data: Record<string, unknown> };
  expect(body.type).toBe('webhook.delivery.exhausted');
  expect(body.data).toMatchObject({ eventId: published.id, eventType: 'ops.exhaust', endpointId: failingEp.id, attempts: 5, lastStatusCode: 500 });

  // Every subscriber (the first test's too) but the endpoint it is about.
  const event = await s.json<{ deliveries: { endpointId: string }[] }>('GET', `/v1/events/${body.id}`);
  const reached = event.deliveries.map((d) => d.endpointId);
  expect(reached).toContain(opsEp.id);
  expect(reached).not.toContain(failingEp.id);
  expect(bodies(failing).every((b) => b.type === 'ops.exhaust')).toBe(true);
  expect(failing.count()).toBe(5);
});

it('the delivery of an operational event that is exhausted itself causes no further event', async () => {
  const failingOps = await receiver({ answer: { status: 500 } });
  const watcher = await receiver();
  const failing = await receiver({ answer: { status: 500 } });
  await s.createEndpoint({ url: failing.url, eventTypes: ['ops.chain'] });
  const failingOpsEp = await s.createEndpoint({ url: failingOps.url, eventTypes: ['webhook.delivery.exhausted'] });
  await s.createEndpoint({ url: watcher.url, eventTypes: ['webhook.delivery.exhausted'] });

  const published = await s.publish('ops.chain', {});
  // The exhausted event about ops.chain reaches the watcher; its delivery to failingOps fails 5 times.
  const [first] = await watcher.waitFor(1, 20_000);
  expect(JSON.parse(first.body).data.eventId).toBe(published.id);
  const opsEventId = JSON.parse(first.body).id as string;
  await eventually(async () => {
    const e = await s.json<{ deliveries: { endpointId: string; status: string }[] }>('GET', `/v1/events/${opsEventId}`);
    return e.deliveries.find((d) => d.endpointId === failingOpsEp.id && d.status === 'failed');
  }, 'the operational event delivery to fail', 20_000);
  expect(failingOps.count()).toBe(5);
  // Positive evidence that the worker is past that failure: a later event reaches the watcher...
  await s.publish('ops.chain', {});
  await watcher.waitFor(2, 20_000);
  // ...and nothing was said about the failed delivery of the operational event.
  const types = watcher.requests.map((r) => JSON.parse(r.body).data.eventType);
  expect(types).toEqual(['ops.chain', 'ops.chain']);
});

it('clients cannot publish webhook.* types', async () => {
  const res = await s.call('POST', '/v1/events', { type: 'webhook.endpoint.disabled', payload: {} });
  expect(res.status).toBe(422);
  expect((res.body as { errors: { path: string }[] }).errors[0].path).toBe('/type');
});
