/**
 * The backlog gauges against real Redis and real BullMQ queues: every state counted where a
 * worker would find it, the oldest ready age exact for first attempts and due delayed jobs, and a
 * bounded number of Redis commands per scrape whatever the backlog.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { readQueueBacklog, registerBacklogGauges } from '../../app/queue/metrics';
import { eventually } from '../support/eventually';
import { REDIS_URL } from '../support/env';
import { deleteRedisPrefix, uniqueName } from '../support/isolation';

const prefix = uniqueName('backlog');
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const queues: Queue[] = [];
const workers: Worker[] = [];

function queue(name: string): Queue {
  const q = new Queue(name, { connection: redis, prefix });
  queues.push(q);
  return q;
}

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close(true)));
  await Promise.all(queues.map((q) => q.close()));
  await deleteRedisPrefix(prefix);
  redis.disconnect();
});

test('an empty queue reads zero everywhere', async () => {
  expect(await readQueueBacklog(redis, queue('empty'))).toEqual({ ready: 0, delayed: 0, active: 0, failed: 0, oldestReadySeconds: 0 });
});

test('ready counts waiting jobs and due delayed ones; delayed only what is not due; the oldest age comes from the oldest', async () => {
  const q = queue('mixed');
  const t0 = Date.now();
  await q.add('a', {}, { jobId: 'first' });
  await new Promise((r) => setTimeout(r, 30));
  await q.add('b', {}, { jobId: 'second' });
  await q.add('later', {}, { jobId: 'future', delay: 3_600_000 });
  await q.add('soon', {}, { jobId: 'soon', delay: 200 });
  const before = await readQueueBacklog(redis, q);
  expect(before).toMatchObject({ ready: 2, delayed: 2, active: 0, failed: 0 });
  // Ten seconds later (clock passed in): the oldest is "first", added at t0; "soon" is due too.
  const now = t0 + 10_000;
  const later = await readQueueBacklog(redis, q, now);
  expect(later).toMatchObject({ ready: 3, delayed: 1 });
  const first = await q.getJob('first');
  expect(later.oldestReadySeconds).toBeCloseTo((now - first!.timestamp) / 1000, 3);
});

test('a due delayed job that is older than every waiting job sets the age (no worker promoted it)', async () => {
  const q = queue('due-first');
  await q.add('scheduled', {}, { jobId: 'scheduled', delay: 100 });
  const scheduled = await q.getJob('scheduled');
  const dueAt = scheduled!.timestamp + 100;
  await q.add('fresh', {}, { jobId: 'fresh' });
  const b = await readQueueBacklog(redis, q, dueAt + 5_000);
  expect(b.ready).toBe(2);
  // The due time is the delayed set's score, stamped by BullMQ's add script a few ms after the job's timestamp.
  expect(Math.abs(b.oldestReadySeconds - 5)).toBeLessThan(0.25);
});

test('a scheduled job that a worker promoted counts from when it was due, not from when it was added', async () => {
  const q = queue('promoted');
  await q.add('scheduled', {}, { jobId: 'p1', delay: 300 });
  const job = await q.getJob('p1');
  await new Promise((r) => setTimeout(r, 350));
  // Promote by hand (what a worker's moveToActive does): p1 goes to the wait list, delay reset to 0.
  await job!.promote();
  const b = await readQueueBacklog(redis, q, job!.timestamp + 300 + 2_000);
  expect(b.ready).toBe(1);
  expect(b.oldestReadySeconds).toBeCloseTo(2, 2);
});

test('active and failed jobs are counted', async () => {
  const q = queue('states');
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const w = new Worker(
    'states',
    async (j: Job) => {
      if (j.name === 'fail') throw new Error('boom');
      await held;
    },
    { connection: { host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) }, prefix, concurrency: 2 },
  );
  workers.push(w);
  await q.add('fail', {}, { attempts: 1 });
  await q.add('hold', {});
  const b = await eventually(async () => {
    const r = await readQueueBacklog(redis, q);
    return r.active === 1 && r.failed === 1 ? r : undefined;
  }, 'one active and one failed');
  expect(b).toMatchObject({ ready: 0, delayed: 0 });
  release();
});

test('the cost per scrape does not grow with the backlog', async () => {
  const small = queue('cost-small');
  const big = queue('cost-big');
  await small.addBulk(Array.from({ length: 5 }, (_, i) => ({ name: 'j', data: { i } })));
  await big.addBulk(Array.from({ length: 5_000 }, (_, i) => ({ name: 'j', data: { i }, opts: i % 2 ? { delay: 60_000 } : {} })));
  const commandsFor = async (q: Queue) => {
    const monitor = await redis.monitor();
    // Other suites' commands keep streaming in; one that arrives as disconnect() leaves monitor
    // mode is taken by ioredis for a reply to nothing ("Command queue state error"), emitted as
    // an error that would go unhandled. Only this queue's commands are counted anyway.
    monitor.on('error', () => undefined);
    const seen: string[] = [];
    monitor.on('monitor', (_t: string, args: string[]) => {
      if (args.some((a) => String(a).includes(q.name))) seen.push(String(args[0]).toLowerCase());
    });
    await readQueueBacklog(redis, q);
    await new Promise((r) => setTimeout(r, 100));
    monitor.disconnect();
    return seen.filter((c) => c !== 'multi' && c !== 'exec');
  };
  const smallCommands = await commandsFor(small);
  const bigCommands = await commandsFor(big);
  expect(bigCommands.length).toBeLessThanOrEqual(12);
  expect(bigCommands.sort()).toEqual(smallCommands.sort());
  expect((await readQueueBacklog(redis, big)).ready + (await readQueueBacklog(redis, big)).delayed).toBe(5_000);
});

test('the registered gauges read every queue once per scrape and disappear while Redis is unreachable', async () => {
  const q1 = queue('gauge-email');
  const q2 = queue('gauge-webhook');
  await q1.add('x', {});
  const registry = new Registry();
  registerBacklogGauges(registry, redis, [q1, q2]);
  registerBacklogGauges(registry, redis, [q1, q2]); // idempotent
  const text = await registry.metrics();
  expect(text).toMatch(/^easeemail_queue_jobs\{queue="gauge-email",state="ready"\} 1$/m);
  expect(text).toMatch(/^easeemail_queue_jobs\{queue="gauge-webhook",state="failed"\} 0$/m);
  expect(text).toMatch(/^easeemail_queue_oldest_ready_seconds\{queue="gauge-email"\} \d/m);
  expect(text).toMatch(/^easeemail_queue_oldest_ready_seconds\{queue="gauge-webhook"\} 0$/m);

  const down = new Redis({ port: 1, host: '127.0.0.1', enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  down.on('error', () => undefined);
  const offline = new Registry();
  registerBacklogGauges(offline, down, [q1]);
  const none = await offline.metrics();
  expect(none).toContain('# TYPE easeemail_queue_jobs gauge');
  expect(none).not.toMatch(/^easeemail_queue_jobs\{/m);
  down.disconnect();
});
