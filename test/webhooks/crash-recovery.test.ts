/**
 * At-least-once delivery across a worker crash: the worker (its own process, the real CLI) is
 * killed with SIGKILL while 1,000 deliveries (100 events × 10 endpoints) are under way. After a
 * restart every delivery completes; deliveries that were in flight at the kill may arrive twice
 * (sent, but the worker died before recording it). Duplicates are counted and reported; they
 * are bounded by what can be in flight at once (WEBHOOK_CONCURRENCY).
 *
 * JOB_LOCK_MS is 3 s here so the killed worker's jobs are handed out again quickly.
 */
import { eventually } from '../support/eventually';
import { startRole, stopProcess } from '../support/processes';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, startProcessStack, type Publisher, type Stack } from '../support/stack';
import { DEFAULT_APPLICATION_ID } from '../../app/applications';

jest.setTimeout(120_000);

const EVENTS = 100;
const ENDPOINTS = 10;
const TOTAL = EVENTS * ENDPOINTS;
const CONCURRENCY = 50;

let s: Stack;
let rx: Receiver;
let publisher: Publisher;
const perDelivery = new Map<string, number>();

beforeAll(async () => {
  // The worker starts only once every event is published: on a fast machine it would otherwise
  // deliver all 1,000 while the test is still publishing, and the kill would land on an idle worker.
  s = await startProcessStack('wh_crash', {
    worker: false,
    env: { ...FAST_DELIVERY_ENV, WEBHOOK_TIMEOUT_MS: '2000', SMTP_TIMEOUT_MS: '2000', JOB_LOCK_MS: '3000', WEBHOOK_CONCURRENCY: String(CONCURRENCY) },
  });
  // A few milliseconds per answer, so that plenty are in flight when the kill lands.
  rx = await startReceiver({ keep: false, answer: { status: 200, delayMs: 5 }, onRequest: (r) => perDelivery.set(r.headers['webhook-id'], (perDelivery.get(r.headers['webhook-id']) ?? 0) + 1) });
  publisher = s.publisher();
});
afterAll(async () => {
  await s?.stop();
  await rx?.close();
});

it('every one of 1,000 deliveries completes after the worker is SIGKILLed mid-run and restarted', async () => {
  for (let i = 0; i < ENDPOINTS; i++) await s.createEndpoint({ url: `${rx.url}/e${i}`, eventTypes: ['crash.test'] });
  for (let i = 0; i < EVENTS; i++) expect((await publisher.events.publish({ applicationId: DEFAULT_APPLICATION_ID, type: 'crash.test', payload: { i }, apiKeyId: null })).deliveries).toBe(ENDPOINTS);

  s.workerProcess = await startRole('worker', s.t.env);
  await rx.waitFor(TOTAL * 0.3, 60_000);
  const killedAt = rx.count();
  s.workerProcess!.cli.child.kill('SIGKILL');
  expect(await s.workerProcess!.cli.exited).toBe('SIGKILL');
  expect(rx.count()).toBeLessThan(TOTAL);

  s.workerProcess = await startRole('worker', s.t.env, { port: s.workerProcess.port });
  await eventually(async () => ((await s.t.db.webhookDelivery.count({ where: { status: 'delivered' } })) === TOTAL ? true : undefined), 'all deliveries delivered', 90_000);

  const statuses = await s.t.db.webhookDelivery.groupBy({ by: ['status'], _count: true });
  expect(statuses).toEqual([{ status: 'delivered', _count: TOTAL }]);
  expect(perDelivery.size).toBe(TOTAL);
  const duplicates = rx.count() - perDelivery.size;
  const twice = [...perDelivery.values()].filter((n) => n > 1).length;
  console.log(`SIGKILL after ${killedAt} of ${TOTAL} requests; all ${TOTAL} delivered after the restart; ${rx.count()} requests received, ${duplicates} duplicates (${twice} deliveries received more than once)`);
  // Only attempts in flight at the kill can repeat: at most the worker's concurrency.
  expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
  // No attempt number was recorded twice, and every delivery's attempts are numbered 1..n.
  const gaps = await s.t.db.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM webhook_deliveries d
    WHERE d."attemptCount" <> (SELECT count(*) FROM webhook_attempts a WHERE a."deliveryId" = d.id)`;
  expect(Number(gaps[0].n)).toBe(0);
  await stopProcess(s.workerProcess.cli);
});
