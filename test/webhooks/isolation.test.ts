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
import { summarize } from '../../bench/lib/stats';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, openPublisher, startProcessStack, type Publisher, type Stack } from './stack';

jest.setTimeout(60_000);

let s: Stack;
let hanging: Receiver;
let healthy: Receiver;
let publisher: Publisher;

beforeAll(async () => {
  s = await startProcessStack('wh_isolation', { ...FAST_DELIVERY_ENV, WEBHOOK_TIMEOUT_MS: '3000', WEBHOOK_ENDPOINT_MAX_IN_FLIGHT: '10', WEBHOOK_CONCURRENCY: '50' });
  hanging = await startReceiver({ answer: { hang: true } });
  healthy = await startReceiver();
  publisher = openPublisher(s.t);
});
afterAll(async () => {
  // Closing the hanging receiver first ends its attempts at once, so the worker stops quickly.
  await hanging?.close();
  await healthy?.close();
  await publisher?.close();
  await s?.stop();
});

it('100 deliveries to a healthy endpoint are not delayed by 100 queued ahead for a hanging one', async () => {
  await s.createEndpoint({ url: hanging.url, eventTypes: ['iso.hang'] });
  await s.createEndpoint({ url: healthy.url, eventTypes: ['iso.fast'] });
  const accepted = new Map<string, number>();
  const publishAll = async (type: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const { id } = await publisher.events.publish({ type, payload: { i }, apiKeyId: null });
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
  // Within the first timeout window the hanging endpoint got at most its in-flight limit.
  if (elapsed < 3_000) expect(hanging.count()).toBeLessThanOrEqual(10);
});
