/**
 * The request path's detached job adds (queue/producer.ts enqueueDetached) against a Redis of the
 * test's own, paused with CLIENT PAUSE WRITE so an add is held for a known time: a caller under
 * the bound is answered while its add is still held; a caller over it waits for its own add;
 * drain waits for every add started; an add held past the give-up time answers false and still lands.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createQueues, producerConnection, type Queues } from '../../app/queue';
import { createJobProducer, MAX_DETACHED_JOBS, type JobProducer } from '../../app/queue/producer';
import { privateRedis, type PrivateRedis } from '../support/redis-server';
import { testLog } from '../support/stack';

const PAUSE_MS = 1_500;
// The backpressure test's caller waits for an add of MAX_DETACHED_JOBS jobs that Redis first
// holds for PAUSE_MS: with the production give-up time (2 s) a loaded machine could give that add
// up before it landed and the caller would be answered without it (CI saw this once). The
// give-up time has its own test below.
const PATIENT_MS = 60_000;
const GIVE_UP_MS = 200;

let redis: PrivateRedis;
let connection: Redis;
let admin: Redis;
let queues: Queues;
let producer: JobProducer;
const settings = { email: { maxAttempts: 3, retryBaseMs: 1_000 } };

beforeAll(async () => {
  redis = await privateRedis();
  await redis.start();
  connection = producerConnection(redis.url);
  admin = new Redis(redis.url);
  queues = createQueues(connection, 'detached');
  producer = createJobProducer({ queues, redis: connection, settings, log: testLog, enqueueTimeoutMs: PATIENT_MS });
  await queues.email.waitUntilReady();
});
afterAll(async () => {
  await queues?.close();
  connection?.disconnect();
  admin?.disconnect();
  await redis?.stop();
});

const ids = (n: number) => Array.from({ length: n }, () => randomUUID());
const exists = async (id: string) => (await admin.exists(queues.email.toKey(id))) === 1;

test('a detached add is in Redis once drain resolves', async () => {
  const jobs = ids(3);
  await producer.enqueueDetached('email', jobs);
  await producer.drain();
  expect(await Promise.all(jobs.map((id) => queues.email.getJobState(id)))).toEqual(['waiting', 'waiting', 'waiting']);
});

test('under the bound the caller does not wait for Redis; over it, it waits for its own add', async () => {
  await admin.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
  const pausedAt = Date.now();

  const few = ids(10);
  await producer.enqueueDetached('email', few);
  // Answered while Redis still holds the add: the job is not there yet.
  expect(Date.now() - pausedAt).toBeLessThan(PAUSE_MS / 2);
  expect(await exists(few[0])).toBe(false);

  const many = ids(MAX_DETACHED_JOBS);
  await producer.enqueueDetached('email', many);
  // This caller took the backlog over the bound, so it resolved only once its add was done.
  expect(await exists(many[0])).toBe(true);
  expect(await exists(many[many.length - 1])).toBe(true);

  await producer.drain();
  expect((await Promise.all(few.map(exists))).every(Boolean)).toBe(true);
});

test('an add Redis holds past the give-up time answers false at that time, and lands once Redis answers', async () => {
  const hasty = createJobProducer({ queues, redis: connection, settings, log: testLog, enqueueTimeoutMs: GIVE_UP_MS });
  await admin.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
  const pausedAt = Date.now();

  const [id] = ids(1);
  expect(await hasty.enqueue('email', [id])).toBe(false);
  const waited = Date.now() - pausedAt;
  expect(waited).toBeGreaterThanOrEqual(GIVE_UP_MS - 5);
  expect(waited).toBeLessThan(PAUSE_MS);
  expect(await exists(id)).toBe(false);

  // Given up by the caller, not cancelled: the add goes through when Redis takes writes again.
  await admin.call('CLIENT', 'UNPAUSE');
  const deadline = Date.now() + 10_000;
  while (!(await exists(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(await exists(id)).toBe(true);
});
