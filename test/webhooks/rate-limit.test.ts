/**
 * Per-endpoint rate limit across worker processes: three `easeemail worker` processes share the
 * queue; an endpoint limited to 50 deliveries/s gets 2,000 at 50/s ± 10 % measured at the
 * receiver, and deliveries over the limit wait without failing (every one arrives once, as its
 * first attempt) and without holding worker slots: another endpoint's 300 deliveries, published
 * after the 2,000, all arrive while the limited endpoint is still being served.
 */
import { startRole, stopProcess, type RoleProcess } from '../support/processes';
import { startReceiver, type Receiver } from '../support/receiver';
import { FAST_DELIVERY_ENV, startProcessStack, type Publisher, type Stack } from '../support/stack';

jest.setTimeout(180_000);

const RATE = 50;
const LIMITED = 2_000;
const FREE = 300;

let s: Stack;
let limited: Receiver;
let free: Receiver;
let publisher: Publisher;
const extraWorkers: RoleProcess[] = [];

beforeAll(async () => {
  s = await startProcessStack('wh_rate_limit', { env: FAST_DELIVERY_ENV });
  for (let i = 0; i < 2; i++) extraWorkers.push(await startRole('worker', s.t.env));
  limited = await startReceiver();
  free = await startReceiver();
  publisher = s.publisher();
});
afterAll(async () => {
  await Promise.all(extraWorkers.map((w) => stopProcess(w.cli)));
  await limited?.close();
  await free?.close();
  await s?.stop();
});

/**
 * Records `n` events of `type` with their deliveries in one statement, then enqueues their jobs:
 * the same rows and jobs POST /v1/events makes, written fast enough that the test measures the
 * limit rather than how fast events can be published on a busy machine.
 */
async function publishBulk(type: string, n: number): Promise<void> {
  const rows = await s.t.db.$queryRaw<{ id: string }[]>`
    WITH e AS (
      INSERT INTO "events" ("id", "type", "payload", "createdAt")
      SELECT gen_random_uuid(), ${type}, jsonb_build_object('i', g), now() AT TIME ZONE 'UTC' FROM generate_series(1, ${n}::int) g
      RETURNING "id"
    )
    INSERT INTO "webhook_deliveries" ("id", "eventId", "endpointId", "status", "nextAttemptAt", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), e."id", p."id", 'pending', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
    FROM e CROSS JOIN "webhook_endpoints" p WHERE ${type} = ANY (p."eventTypes")
    RETURNING "id"::text AS "id"`;
  expect(rows).toHaveLength(n);
  for (let i = 0; i < rows.length; i += 500) await publisher.jobs.ensureJobs('webhook', rows.slice(i, i + 500).map((r) => r.id));
}

it(`an endpoint limited to ${RATE}/s gets ${LIMITED} deliveries from 3 workers at ${RATE}/s ± 10 %, another endpoint is not held up`, async () => {
  const limitedEp = await s.createEndpoint({ url: limited.url, eventTypes: ['rl.limited'], rateLimit: RATE });
  await s.createEndpoint({ url: free.url, eventTypes: ['rl.free'] });
  expect((await s.json<{ rateLimit: number }>('GET', `/v1/webhook-endpoints/${limitedEp.id}`)).rateLimit).toBe(RATE);

  await publishBulk('rl.limited', LIMITED);
  const freePublishedAt = Date.now();
  await publishBulk('rl.free', FREE);

  const freeReceived = await free.waitFor(FREE, 60_000);
  const freeDoneAt = Math.max(...freeReceived.map((r) => r.at));
  const limitedCountWhenFreeDone = limited.requests.filter((r) => r.at <= freeDoneAt).length;

  const received = await limited.waitFor(LIMITED, 120_000);
  const times = received.map((r) => r.at).sort((a, b) => a - b);
  // The rate of the run once under way: from the 100th to the 1,900th delivery. Before it, the
  // workers are still taking the 2,000 jobs in (each reserves its place and is parked), and jobs
  // due back meanwhile queue behind that backlog; how long that lasts is printed, not judged.
  const [from, to] = [times[99], times[LIMITED - 101]];
  const rate = (LIMITED - 201) / ((to - from) / 1000);
  const windows: number[] = [];
  for (let start = from; start + 5_000 <= to; start += 1_000) windows.push(times.filter((t) => t >= start && t < start + 5_000).length / 5);
  console.log(
    `rate limit ${RATE}/s, ${LIMITED} deliveries from 3 workers: ${rate.toFixed(2)}/s from the 100th to the 1,900th ` +
      `(${((times[LIMITED - 1] - times[0]) / 1000).toFixed(1)} s first to last, 100th after ${((from - times[0]) / 1000).toFixed(1)} s; ` +
      `5 s windows: min ${Math.min(...windows).toFixed(1)}/s, max ${Math.max(...windows).toFixed(1)}/s [${windows.map((w) => w.toFixed(0)).join(' ')}]); ` +
      `unlimited endpoint: ${FREE} deliveries done ${freeDoneAt - freePublishedAt} ms after publishing began, ` +
      `while the limited one had ${limitedCountWhenFreeDone} of ${LIMITED}`,
  );
  expect(rate).toBeGreaterThanOrEqual(RATE * 0.9);
  expect(rate).toBeLessThanOrEqual(RATE * 1.1);
  expect(Math.max(...windows)).toBeLessThanOrEqual(RATE * 1.1);
  // Every delivery arrived once, on its first attempt: waiting for the limit is not a failure.
  const ids = received.map((r) => r.headers['webhook-id']);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length) console.log('sent twice', twice.length, JSON.stringify(await s.t.db.webhookAttempt.findMany({ where: { deliveryId: { in: twice.slice(0, 3) } } })));
  expect(new Set(ids).size).toBe(LIMITED);
  const rows = await s.t.db.webhookDelivery.groupBy({ by: ['status', 'attemptCount'], where: { endpointId: limitedEp.id }, _count: true });
  expect(rows).toEqual([{ status: 'delivered', attemptCount: 1, _count: LIMITED }]);
  // The unlimited endpoint was served while the limited one still had most of its backlog.
  expect(limitedCountWhenFreeDone).toBeLessThan(LIMITED / 2);
});
