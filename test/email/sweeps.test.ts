/**
 * The worker's email sweeps against real PostgreSQL and Redis (no worker running, so jobs stay
 * where the sweeps put them): due scheduled rows, rows without a live job, finished jobs of rows
 * that still need sending, orphaned `sending` rows, and rows of a batch job (covered while that
 * job is unfinished).
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { createContainer, type Container } from '../../app/container';
import { createLifecycle } from '../../app/lifecycle';
import { createEmailWriter, type NewEmailRow } from '../../app/email/store';
import { createEmailSweeps } from '../../app/email/sweeps';
import { emailBatchJob, QUEUE_NAMES, workerConnectionOptions } from '../../app/queue';
import type { Sweep } from '../../app/queue/processor';
import { createJobProducer } from '../../app/queue/producer';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { FAST_ENV, testLog } from '../support/stack';
import { DEFAULT_APPLICATION_ID } from '../../app/applications';

let t: TestEnvironment;
let c: Container;
let sweeps: Record<string, Sweep>;
const LEASE_MS = 3_000;

beforeAll(async () => {
  t = await createTestEnvironment('email_sweeps', FAST_ENV);
  c = createContainer({ role: 'worker', config: t.config, log: testLog, lifecycle: createLifecycle(testLog, 5_000) });
  const list = createEmailSweeps({ db: c.db, jobs: createJobProducer({ queues: c.queues, redis: c.redis, settings: c.config, log: testLog }), queues: c.queues, graceMs: 0, leaseMs: LEASE_MS });
  sweeps = Object.fromEntries(list.map((s) => [s.name, s]));
});
afterAll(async () => {
  await c?.lifecycle.shutdown('test end');
  await t?.cleanup();
});

function row(over: Partial<NewEmailRow> = {}): NewEmailRow {
  const id = randomUUID();
  const now = new Date(Date.now() - 60_000); // old enough for any grace
  return {
    id, applicationId: DEFAULT_APPLICATION_ID, apiKeyId: null, status: 'queued', from: 'a@example.com', to: ['b@example.com'], cc: [], bcc: [], replyTo: [],
    subject: 'sweep', text: 'x', html: null, templateId: null, templateData: null, headers: null, attachments: null,
    tags: [], metadata: null, messageId: `<${id}@example.com>`, scheduledAt: null, attemptCount: 0, deliveryBatchId: null, createdAt: now, updatedAt: now,
    ...over,
  };
}

async function insert(rows: NewEmailRow[]) {
  await createEmailWriter({ db: c.db }).insert(rows);
  return rows.map((r) => r.id);
}

const state = (id: string) => c.queues.email.getJobState(id);

/** Takes the next job of the queue and fails it the way a worker does, by hand (no processor runs in this suite). */
async function failNextJob(queue: string, expectedId: string, reason: string) {
  const manual = new Worker(queue, null, { connection: workerConnectionOptions(t.config.redisUrl), prefix: t.config.redisPrefix });
  try {
    const job = (await manual.getNextJob('token'))!;
    expect(job.id).toBe(expectedId);
    await job.moveToFailed(new Error(reason), 'token', false);
  } finally {
    await manual.close();
  }
}

test('queued rows without a job get one; a healthy queue is not scanned again', async () => {
  const ids = await insert([row(), row(), row()]);
  expect(await sweeps['email-outbox'].run()).toBe(3);
  expect(await Promise.all(ids.map(state))).toEqual(['waiting', 'waiting', 'waiting']);
  expect(await sweeps['email-outbox'].run()).toBe(0);

  await c.queues.email.remove(ids[1]); // Redis lost one
  expect(await sweeps['email-outbox'].run()).toBe(1);
  expect(await state(ids[1])).toBe('waiting');
});

test('a finished job of a row that is still queued is replaced (BullMQ would ignore the add)', async () => {
  await c.queues.email.drain(); // the earlier tests' waiting jobs
  await c.db.email.updateMany({ data: { status: 'sent' } });
  const [id] = await insert([row()]);
  await c.queues.email.add('send', { emailId: id }, { jobId: id });
  await failNextJob(QUEUE_NAMES.email, id, 'attempts used up');
  expect(await state(id)).toBe('failed');
  expect(await sweeps['email-outbox'].run()).toBe(1);
  expect(await state(id)).toBe('waiting');
});

test('a sending row is re-enqueued only once its lease has run out', async () => {
  const fresh = row({ status: 'queued' });
  const stale = row({ status: 'queued' });
  await insert([fresh, stale]);
  await c.db.email.update({ where: { id: fresh.id }, data: { status: 'sending', updatedAt: new Date() } });
  await c.db.email.update({ where: { id: stale.id }, data: { status: 'sending', updatedAt: new Date(Date.now() - LEASE_MS - 1_000) } });
  await sweeps['email-outbox'].run();
  expect(await state(fresh.id)).toBe('unknown');
  expect(await state(stale.id)).toBe('waiting');
});

test('due scheduled rows become queued with a job; future ones stay', async () => {
  const [due, later] = await insert([
    row({ status: 'scheduled', scheduledAt: new Date(Date.now() - 1_000) }),
    row({ status: 'scheduled', scheduledAt: new Date(Date.now() + 3_600_000) }),
  ]);
  expect(await sweeps['email-scheduled-due'].run()).toBe(1);
  const rows = await c.db.email.findMany({ where: { id: { in: [due, later] } }, select: { id: true, status: true } });
  expect(Object.fromEntries(rows.map((r) => [r.id, r.status]))).toEqual({ [due]: 'queued', [later]: 'scheduled' });
  expect(await state(due)).toBe('waiting');
});

test('terminal rows are never re-enqueued', async () => {
  const ids = await insert([row(), row()]);
  await c.db.email.updateMany({ where: { id: { in: ids } }, data: { status: 'sent' } });
  await sweeps['email-outbox'].run();
  expect(await Promise.all(ids.map(state))).toEqual(['unknown', 'unknown']);
});

test('rows of a batch are left to their batch job while it is unfinished, then get jobs of their own', async () => {
  await c.queues.email.drain();
  await c.db.email.updateMany({ data: { status: 'sent' } });
  const batchId = randomUUID();
  const members = [row({ id: batchId, deliveryBatchId: batchId }), row({ deliveryBatchId: batchId }), row({ deliveryBatchId: batchId })];
  const [alone] = await insert([row(), ...members]);
  const ids = members.map((r) => r.id);
  const batch = emailBatchJob(ids);
  await c.queues.emailBatch.add(batch.name, batch.data as { emailIds: string[] }, batch.opts);
  expect(await c.queues.emailBatch.getJobState(batchId)).toBe('waiting');

  // The lone row needs a job; the batch's rows have theirs.
  expect(await sweeps['email-outbox'].run()).toBe(1);
  expect(await state(alone)).toBe('waiting');
  expect(await Promise.all(ids.map(state))).toEqual(['unknown', 'unknown', 'unknown']);
  expect(await sweeps['email-outbox'].run()).toBe(0);

  // One of them was sent, then the batch job failed (it is not retried): the other two get jobs.
  await c.db.email.update({ where: { id: ids[1] }, data: { status: 'sent' } });
  await failNextJob(QUEUE_NAMES.emailBatch, batchId, 'database unreachable');
  expect(await c.queues.emailBatch.getJobState(batchId)).toBe('failed');
  expect(await sweeps['email-outbox'].run()).toBe(2);
  expect(await Promise.all(ids.map(state))).toEqual(['waiting', 'unknown', 'waiting']);
});

test('rows of a batch whose job Redis lost get jobs of their own', async () => {
  await c.queues.email.drain();
  await c.db.email.updateMany({ data: { status: 'sent' } });
  const batchId = randomUUID();
  const members = [row({ id: batchId, deliveryBatchId: batchId }), row({ deliveryBatchId: batchId })];
  const ids = await insert(members);
  expect(await c.queues.emailBatch.getJobState(batchId)).toBe('unknown');
  expect(await sweeps['email-outbox'].run()).toBe(2);
  expect(await Promise.all(ids.map(state))).toEqual(['waiting', 'waiting']);
});
