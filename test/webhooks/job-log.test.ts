/** The worker's log lines about a webhook job name the delivery's application (taken from the row it loads). */
import { createApiKeyService } from '../../app/auth/api-keys';
import { createLogger } from '../../app/log';
import { eventually } from '../support/eventually';
import { request } from '../support/http';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, startStack, type Stack } from '../support/stack';

jest.setTimeout(60_000);

const lines: Array<{ msg: string; applicationId?: string; deliveryId?: string; endpointId?: string }> = [];
const workerLog = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });

let s: Stack;
let rx: Receiver;

beforeAll(async () => {
  s = await startStack('wh_job_log', { env: FAST_DELIVERY_ENV, workerLog });
  rx = await startReceiver({ answer: { status: 410, body: 'gone' } });
});
afterAll(async () => {
  await s?.stop();
  await rx?.close();
});

test("an endpoint disabled by a 410 is logged with the delivery's application, endpoint and delivery", async () => {
  const billing = await s.t.db.application.create({ data: { name: 'job-log-billing' } });
  const { key } = await createApiKeyService({ db: s.t.db }).create({ name: 'billing', scopes: ['admin'], applicationId: billing.id });
  const endpoint = await request(s.base, key, 'POST', '/v1/webhook-endpoints', { url: `${rx.url}/hook` });
  expect(endpoint.status).toBe(201);
  const published = await request(s.base, key, 'POST', '/v1/events', { type: 'invoice.paid', payload: { n: 1 } });
  expect(published.status).toBeLessThan(300);

  const line = await eventually(async () => lines.find((l) => l.msg === 'webhook endpoint disabled'), 'the worker to log the disabling');
  expect(line).toMatchObject({ applicationId: billing.id, endpointId: endpoint.body.id, deliveryId: expect.any(String) });
});
