/**
 * Webhook isolation between applications, end to end (api + worker + loopback receivers): A's
 * endpoint for every event type receives none of B's events, not even the service's own email.*
 * events for B's emails, while B's own endpoint receives them. Positive evidence first (B's
 * endpoint got B's events, A's endpoint got A's later event), then the absence checks.
 */
import { createApiKeyService } from '../../app/auth/api-keys';
import { eventually } from '../support/eventually';
import { request } from '../support/http';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, startStack, type Stack } from '../support/stack';

jest.setTimeout(60_000);

let s: Stack;
const receivers: Receiver[] = [];

beforeAll(async () => {
  s = await startStack('wh_app_isolation', { env: FAST_DELIVERY_ENV });
});
afterAll(async () => {
  await s?.stop();
  await Promise.all(receivers.map((r) => r.close()));
});

async function application(name: string) {
  const row = await s.t.db.application.create({ data: { name } });
  const { key } = await createApiKeyService({ db: s.t.db }).create({ name, scopes: ['admin'], applicationId: row.id });
  const rx = await startReceiver();
  receivers.push(rx);
  const call = (method: string, path: string, body?: unknown) => request(s.base, key, method, path, body);
  const endpoint = await call('POST', '/v1/webhook-endpoints', { url: `${rx.url}/hook` });
  expect(endpoint.status).toBe(201);
  return { id: row.id, rx, call, endpointId: endpoint.body.id as string };
}

const types = (rx: Receiver) => rx.requests.map((r) => (JSON.parse(r.body) as { type: string }).type);

test("A's all-types endpoint receives none of B's events, B's endpoint receives them all", async () => {
  const a = await application('iso-a');
  const b = await application('iso-b');

  expect((await b.call('POST', '/v1/events', { type: 'invoice.paid', payload: { n: 1 } })).status).toBeLessThan(300);
  expect((await b.call('POST', '/v1/emails', { to: 'someone@example.com', subject: 'receipt', text: 'thanks' })).status).toBe(202);

  // Positive evidence: B's endpoint got B's own event and an email.* event of B's email.
  await eventually(async () => (types(b.rx).includes('invoice.paid') && types(b.rx).some((t) => t.startsWith('email.')) ? true : undefined), "B's events at B's endpoint");
  // Then A publishes and A's endpoint gets it: the worker has been delivering to A's endpoint since
  // B's events were fanned out (deliveries are rows made with the event; the database check covers any still queued).
  expect((await a.call('POST', '/v1/events', { type: 'a.marker', payload: {} })).status).toBeLessThan(300);
  await eventually(async () => (types(a.rx).includes('a.marker') ? true : undefined), "A's event at A's endpoint");

  expect(types(a.rx)).toEqual(['a.marker']);
  expect(types(b.rx)).not.toContain('a.marker');
  // And in the database: no delivery to A's endpoint is of an event of B.
  const crossed = await s.t.db.webhookDelivery.count({ where: { endpointId: a.endpointId, event: { applicationId: b.id } } });
  expect(crossed).toBe(0);
});
