/**
 * Per-endpoint isolation: an endpoint that hangs until the timeout (WEBHOOK_TIMEOUT_MS shrunk to
 * 3 s here; 15 s in production) with 100 deliveries queued ahead must not hold up 100 deliveries
 * to a healthy endpoint: each healthy one arrives within 1 s of being accepted, at p99. The
 * hanging endpoint holds at most WEBHOOK_ENDPOINT_MAX_IN_FLIGHT (10) attempts at a time; worker
 * concurrency is WEBHOOK_CONCURRENCY (50).
 *
 * The worker runs as its own process (the real CLI), as deployed. Events are published through
 * the event service in this process (the same code POST /v1/events runs), so the load generator
 * does not also compete for the CPU as HTTP traffic.
 */
import { eventually } from '../support/eventually';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, startProcessStack, type Publisher, type Stack } from '../support/stack';
import { summarize } from '../support/stats';
import { DEFAULT_APPLICATION_ID } from '../../app/applications';

jest.setTimeout(60_000);

const HANG_TIMEOUT_MS = 3_000;
/**
 * An attempt is counted from its arrival at the receiver, a little after the worker started it,
 * so a slot of the hanging endpoint can free up slightly less than HANG_TIMEOUT_MS after the
 * first arrival; 500 ms of margin for that on a busy machine.
 */
const FIRST_WINDOW_MS = HANG_TIMEOUT_MS - 500;

let s: Stack;
let hanging: Receiver;
let healthy: Receiver;
let publisher: Publisher;

beforeAll(async () => {
  s = await startProcessStack('wh_isolation', { env: { ...FAST_DELIVERY_ENV, WEBHOOK_TIMEOUT_MS: String(HANG_TIMEOUT_MS), WEBHOOK_ENDPOINT_MAX_IN_FLIGHT: '10', WEBHOOK_CONCURRENCY: '50' } });
  hanging = await startReceiver({ answer: { hang: true } });
  healthy = await startReceiver();
  publisher = s.publisher();
});
afterAll(async () => {
  // Closing the hanging receiver first ends its attempts at once, so the worker stops quickly.
  await hanging?.close();
  await healthy?.close();
  await s?.stop();
});

it('100 deliveries to a healthy endpoint are not delayed by 100 queued ahead for a hanging one', async () => {
  await s.createEndpoint({ url: hanging.url, eventTypes: ['iso.hang'] });
  await s.createEndpoint({ url: healthy.url, eventTypes: ['iso.fast'] });
  const accepted = new Map<string, number>();
  const publishAll = async (type: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const { id } = await publisher.events.publish({ applicationId: DEFAULT_APPLICATION_ID, type, payload: { i }, apiKeyId: null });
      accepted.set(id, Date.now());
    }
  };
  const started = Date.now();
  await publishAll('iso.hang', 100);
  await publishAll('iso.fast', 100);
  const received = await healthy.waitFor(100, 20_000);

  const latency = summarize(received.map((r) => r.at - accepted.get(JSON.parse(r.body).id as string)!));
  const elapsed = Date.now() - started;
  console.log(
    `healthy endpoint, accepted → delivered: p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms; ` +
      `hanging endpoint: ${hanging.count()} requests, at most ${hanging.maxOpen()} open at once, in ${elapsed} ms`,
  );
  expect(latency.count).toBe(100);
  expect(latency.p99).toBeLessThanOrEqual(1_000);
  expect(hanging.count()).toBeGreaterThan(0);
  expect(hanging.maxOpen()).toBeLessThanOrEqual(10);
  // Until its first attempts time out, the hanging endpoint gets at most its in-flight limit.
  const firstArrival = hanging.requests[0].at;
  await eventually(async () => (Date.now() > firstArrival + FIRST_WINDOW_MS ? true : undefined), 'the first window to be over');
  expect(hanging.requests.filter((r) => r.at < firstArrival + FIRST_WINDOW_MS).length).toBeLessThanOrEqual(10);
});
