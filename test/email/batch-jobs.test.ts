/**
 * Batch jobs (queue/jobs.ts emailBatch): which emails go on one (those due now that one INSERT
 * writes, from a batch request or from single sends accepted together) and which get their own,
 * against real PostgreSQL and Redis with no worker running; then, with a
 * worker and a real SMTP server, an email of a batch that keeps getting 4xx is handed on to its
 * own job and retried on the schedule a single send has, and one that another worker holds is
 * handed on until that worker's lease has run out.
 */
import { randomUUID } from 'node:crypto';
import { DEFAULT_APPLICATION_ID } from '../../app/applications';
import { assignDeliveryBatches, createEmailWriter, type NewEmailRow } from '../../app/email/store';
import { startWorker, type RunningWorker } from '../../app/worker';
import { eventually } from '../support/eventually';
import { emailJobsFinished, emailReaches, FAST_ENV, startStack, testLog, type Stack } from '../support/stack';

describe('accepting a batch (no worker)', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack('email_batch_accept', { env: FAST_ENV, worker: false });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const rowsOf = async (ids: string[]) =>
    Object.fromEntries((await s.t.db.email.findMany({ where: { id: { in: ids } }, select: { id: true, deliveryBatchId: true } })).map((r) => [r.id, r.deliveryBatchId]));

  test('the emails due now go on one batch job that every row names; a scheduled one gets a delayed job of its own', async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const res = await s.call('POST', '/v1/emails/batch', [
      { to: 'a@example.com', subject: 'a', text: 'x' },
      { to: 'b@example.com', subject: 'b', text: 'x' },
      { to: 'c@example.com', subject: 'c', text: 'x', scheduledAt: later },
      { to: 'd@example.com', subject: 'd', text: 'x' },
    ]);
    expect(res.status).toBe(202);
    const [a, b, c, d] = res.body.data.map((e: { id: string }) => e.id);
    const { queues } = s.publisher();

    // The add runs after the answer (outbox rule): wait for it, then look at what it added.
    const batch = await eventually(() => queues.emailBatch.getJob(a), 'the batch job');
    expect(batch.data).toEqual({ emailIds: [a, b, d] });
    expect(await batch.getState()).toBe('waiting');
    expect(await rowsOf([a, b, c, d])).toEqual({ [a]: a, [b]: a, [c]: null, [d]: a });
    expect(await eventually(async () => ((await queues.email.getJobState(c)) === 'delayed' ? true : undefined), 'the scheduled email job')).toBe(true);
    expect(await Promise.all([a, b, d].map((id) => queues.email.getJobState(id)))).toEqual(['unknown', 'unknown', 'unknown']);
  });

  test('a batch with one email due now and a single send use a job each, no batch job', async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const batch = await s.call('POST', '/v1/emails/batch', [
      { to: 'e@example.com', subject: 'e', text: 'x' },
      { to: 'f@example.com', subject: 'f', text: 'x', scheduledAt: later },
    ]);
    const single = await s.call('POST', '/v1/emails', { to: 'g@example.com', subject: 'g', text: 'x' });
    const [e, f] = batch.body.data.map((x: { id: string }) => x.id);
    const g = single.body.id;
    const { queues } = s.publisher();
    const states = await eventually(async () => {
      const all = await Promise.all([e, f, g].map((id) => queues.email.getJobState(id)));
      return all.includes('unknown') ? undefined : all;
    }, 'their jobs');
    expect(states).toEqual(['waiting', 'delayed', 'waiting']);
    expect(await rowsOf([e, f, g])).toEqual({ [e]: null, [f]: null, [g]: null });
    expect(await queues.emailBatch.getJobState(e)).toBe('unknown');
  });
});

function row(status: 'queued' | 'scheduled' = 'queued'): NewEmailRow {
  const id = randomUUID();
  const now = new Date();
  return {
    id, applicationId: DEFAULT_APPLICATION_ID, apiKeyId: null, status, from: 'a@example.com', to: ['b@example.com'], cc: [], bcc: [], replyTo: [],
    subject: 'rows', text: 'x', html: null, templateId: null, templateData: null, headers: null, attachments: null, tags: [], metadata: null,
    messageId: `<${id}@example.com>`, scheduledAt: status === 'scheduled' ? new Date(Date.now() + 3_600_000) : null, attemptCount: 0, deliveryBatchId: 'stale', createdAt: now, updatedAt: now,
  } as NewEmailRow;
}

test('due rows go on batches of at most 100; a lone remainder and scheduled rows keep jobs of their own', () => {
  const due = Array.from({ length: 101 }, () => row());
  const scheduled = row('scheduled');
  const batches = assignDeliveryBatches([...due.slice(0, 50), scheduled, ...due.slice(50)]);
  expect(batches).toEqual([due.slice(0, 100).map((r) => r.id)]);
  expect(new Set(due.slice(0, 100).map((r) => r.deliveryBatchId))).toEqual(new Set([due[0].id]));
  expect([due[100].deliveryBatchId, scheduled.deliveryBatchId]).toEqual([null, null]);
  expect(assignDeliveryBatches([row()])).toEqual([]);
});

describe('single sends accepted together', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack('email_batch_singles', { env: FAST_ENV, worker: false });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test('share one batch job when one statement writes them', async () => {
    const { jobs, queues } = s.publisher();
    const writer = createEmailWriter({ db: s.t.db, jobs });
    const [a, b, c] = [row(), row(), row('scheduled')];
    // Submitted in the same turn: one INSERT, as concurrent requests' rows are.
    await Promise.all([writer.insert([a]), writer.insert([b]), writer.insert([c])]);
    await jobs.drain();
    const batch = await queues.emailBatch.getJob(a.id);
    expect(batch?.data).toEqual({ emailIds: [a.id, b.id] });
    const stored = await s.t.db.email.findMany({ where: { id: { in: [a.id, b.id, c.id] } }, select: { id: true, deliveryBatchId: true } });
    expect(Object.fromEntries(stored.map((r) => [r.id, r.deliveryBatchId]))).toEqual({ [a.id]: a.id, [b.id]: a.id, [c.id]: null });
  });
});

describe('delivering a batch', () => {
  const BASE_MS = 400;
  let s: Stack;
  beforeAll(async () => {
    s = await startStack('email_batch_deliver', { env: { ...FAST_ENV, EMAIL_RETRY_BASE_MS: String(BASE_MS), EMAIL_MAX_ATTEMPTS: '3' } });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test('an email of a batch refused with 4xx is retried on its own job, as a single send would be; the rest are sent once', async () => {
    s.smtp.rejectRecipient('busy@example.com', '451 Try again later');
    const res = await s.call(
      'POST',
      '/v1/emails/batch',
      Array.from({ length: 20 }, (_, i) => ({ to: i === 7 ? 'busy@example.com' : `ok${i}@example.com`, subject: `batch ${i}`, text: 'x' })),
    );
    expect(res.status).toBe(202);
    const ids: string[] = res.body.data.map((e: { id: string }) => e.id);
    const busy = await emailReaches(s, ids[7], 'failed', 30_000);
    for (const [i, id] of ids.entries()) if (i !== 7) await emailReaches(s, id, 'sent');
    await emailJobsFinished(s, ids);

    expect(busy.attempts.map((a: { number: number; outcome: string }) => [a.number, a.outcome])).toEqual([
      [1, 'retry'],
      [2, 'retry'],
      [3, 'failed'],
    ]);
    // After attempt n the wait is BASE·2^(n-1), 50-100 % of it: attempt 2 came from the job the
    // batch handed the email on to (a wait the batch set), attempt 3 from that job's own backoff.
    const waits = [1, 2].map((n) => Date.parse(busy.attempts[n].startedAt) - Date.parse(busy.attempts[n - 1].finishedAt));
    expect(waits[0]).toBeGreaterThanOrEqual(BASE_MS / 2 - 5);
    expect(waits[1]).toBeGreaterThanOrEqual(BASE_MS - 5);
    expect(busy.lastError).toMatch(/451/);
    expect(await s.t.db.event.count({ where: { type: 'email.failed' } })).toBe(1);

    // Every other email arrived exactly once, and each was attempted once.
    const arrived = new Map<string, number>();
    for (const m of s.smtp.messages) arrived.set(m.emailId!, (arrived.get(m.emailId!) ?? 0) + 1);
    expect(ids.filter((_, i) => i !== 7).map((id) => arrived.get(id))).toEqual(Array(19).fill(1));
    expect(arrived.has(ids[7])).toBe(false);
    expect(await s.t.db.emailAttempt.count({ where: { emailId: { in: ids.filter((_, i) => i !== 7) } } })).toBe(19);
  });
});

describe('an email of a batch that another worker holds', () => {
  const LEASE_MS = 3_000;
  let s: Stack;
  let worker: RunningWorker | undefined;
  beforeAll(async () => {
    s = await startStack('email_batch_lease', { env: { ...FAST_ENV, JOB_LOCK_MS: String(LEASE_MS) }, worker: false });
  });
  afterAll(async () => {
    await worker?.lifecycle.shutdown('test end');
    await s?.stop();
  });

  test('is handed on to its own job, due when the lease runs out; the others are sent at once', async () => {
    const res = await s.call('POST', '/v1/emails/batch', Array.from({ length: 3 }, (_, i) => ({ to: `lease${i}@example.com`, subject: `lease ${i}`, text: 'x' })));
    const ids: string[] = res.body.data.map((e: { id: string }) => e.id);
    // As a worker that claimed it and then died would leave it: sending, attempt 1, just now.
    const claimedAt = new Date();
    await s.t.db.email.update({ where: { id: ids[1] }, data: { status: 'sending', attemptCount: 1, updatedAt: claimedAt } });

    worker = await startWorker(s.t.config, testLog);
    await emailReaches(s, ids[0], 'sent');
    await emailReaches(s, ids[2], 'sent');
    const { queues } = s.publisher();
    expect(await eventually(async () => ((await queues.email.getJobState(ids[1])) === 'delayed' ? true : undefined), 'the handed-on job')).toBe(true);
    expect((await s.call('GET', `/v1/emails/${ids[1]}`)).body.status).toBe('sending');

    const taken = await emailReaches(s, ids[1], 'sent', 15_000);
    expect(taken.attempts.map((a: { number: number; outcome: string; error: string | null }) => [a.number, a.outcome, a.error?.startsWith('abandoned') ?? false])).toEqual([
      [1, 'retry', true],
      [2, 'sent', false],
    ]);
    // Taken over only once the lease had run out.
    expect(Date.parse(taken.attempts[1].startedAt)).toBeGreaterThanOrEqual(claimedAt.getTime() + LEASE_MS);
    expect(s.smtp.messages.map((m) => m.emailId).sort()).toEqual([...ids].sort());
  });
});
