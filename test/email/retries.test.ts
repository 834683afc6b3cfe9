/**
 * SMTP failures against a scripted real SMTP server: 4xx and refused connections are retried
 * with backoff (shrunk to milliseconds here), 5xx fails at once, and every attempt is recorded.
 */
import { emailJobsFinished, emailReaches, FAST_ENV, jobsFinished, receivedEmail, startStack, type Stack } from '../support/stack';

let s: Stack;

beforeAll(async () => {
  s = await startStack('email_retries', { env: { ...FAST_ENV, EMAIL_MAX_ATTEMPTS: '3' } });
});
afterAll(async () => {
  await s?.stop();
});
beforeEach(() => s.smtp.reset());

async function failedEvent(emailId: string) {
  const events = await s.t.db.event.findMany({ where: { type: 'email.failed' } });
  return events.find((e) => (e.payload as { emailId: string }).emailId === emailId);
}

test('421, 421, then 250: sent on the third attempt, each attempt recorded', async () => {
  s.smtp.script(['421 Try again later', '421 Try again later']);
  const res = await s.call('POST', '/v1/emails', { to: 'retry@example.com', subject: 'third time lucky', text: 'x' });
  const email = await emailReaches(s, res.body.id, 'sent');
  expect(s.smtp.replies).toEqual(['421 Try again later', '421 Try again later', '250']);
  expect(email.attemptCount).toBe(3);
  expect(email.attempts.map((a: { number: number; outcome: string }) => [a.number, a.outcome])).toEqual([
    [1, 'retry'],
    [2, 'retry'],
    [3, 'sent'],
  ]);
  expect(email.attempts[0].smtpResponse).toMatch(/^421/);
  expect(email.attempts[0].error).toMatch(/SMTP 421/);
  expect(email.attempts[2].smtpResponse).toMatch(/^250/);
  expect(email.lastError).toBeNull();
  // The retries waited: each attempt starts after the previous one finished.
  for (let i = 1; i < 3; i++) expect(Date.parse(email.attempts[i].startedAt)).toBeGreaterThanOrEqual(Date.parse(email.attempts[i - 1].finishedAt));
  await receivedEmail(s, res.body.id);
  expect(s.smtp.messages.filter((m) => m.emailId === res.body.id)).toHaveLength(1);
  // A soft failure emits no event; only the terminal state does.
  expect(await failedEvent(res.body.id)).toBeUndefined();
});

test('550: failed after one attempt, with the reply and an email.failed event', async () => {
  s.smtp.script(['550 Mailbox unavailable']);
  const res = await s.call('POST', '/v1/emails', { to: 'nobody@example.com', subject: 'bounce', text: 'x' });
  const email = await emailReaches(s, res.body.id, 'failed');
  expect(email.attemptCount).toBe(1);
  expect(email.attempts).toEqual([expect.objectContaining({ number: 1, outcome: 'failed', smtpResponse: expect.stringMatching(/^550 Mailbox unavailable/) })]);
  expect(email.lastError).toMatch(/550/);
  expect(email.failedAt).toEqual(expect.any(String));
  expect(s.smtp.messages).toHaveLength(0);
  const event = await failedEvent(res.body.id);
  expect(event?.payload).toMatchObject({ emailId: res.body.id, status: 'failed', attempts: 1, smtpResponse: expect.stringMatching(/^550/) });
  // Once its job has ended (not parked for a retry), no retry can still come.
  await jobsFinished(s.publisher().queues, 'email', [res.body.id]);
  expect(s.smtp.replies).toEqual(['550 Mailbox unavailable']);
});

test('4xx on every attempt: failed after EMAIL_MAX_ATTEMPTS (3)', async () => {
  s.smtp.script(['451 Local error', '451 Local error', '451 Local error', '451 Local error']);
  const res = await s.call('POST', '/v1/emails', { to: 'flaky@example.com', subject: 'never', text: 'x' });
  const email = await emailReaches(s, res.body.id, 'failed');
  expect(email.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['retry', 'retry', 'failed']);
  expect(email.lastError).toMatch(/451/);
  expect(s.smtp.replies).toHaveLength(3);
});

test('a recipient refused at RCPT with 550 while another is accepted: sent, the refusal recorded', async () => {
  s.smtp.rejectRecipient('gone@example.com', '550 No such user');
  const res = await s.call('POST', '/v1/emails', { to: ['here@example.com', 'gone@example.com'], subject: 'partial', text: 'x' });
  const email = await emailReaches(s, res.body.id, 'sent');
  expect(email.attempts[0].smtpResponse).toMatch(/rejected: gone@example\.com/);
  const msg = await receivedEmail(s, res.body.id);
  expect(msg.envelope.rcptTo).toEqual(['here@example.com']);
});

test('every recipient refused with 550 at RCPT: failed at once', async () => {
  s.smtp.rejectRecipient('gone@example.com', '550 No such user');
  const res = await s.call('POST', '/v1/emails', { to: 'gone@example.com', subject: 'nobody home', text: 'x' });
  const email = await emailReaches(s, res.body.id, 'failed');
  expect(email.attemptCount).toBe(1);
  expect(email.lastError).toMatch(/550/);
});

test('cancel loses against a worker already sending: 409, and the email is sent; the running attempt shows meanwhile', async () => {
  s.smtp.setDelay(600);
  const res = await s.call('POST', '/v1/emails', { to: 'busy@example.com', subject: 'slow server', text: 'x' });
  const sending = await emailReaches(s, res.body.id, 'sending');
  // The attempt under way is shown, though its row is written only when it ends.
  expect(sending.attempts).toEqual([{ number: 1, startedAt: sending.updatedAt, finishedAt: null, outcome: null, smtpResponse: null, error: null, suppressedRecipients: [] }]);
  const cancel = await s.call('POST', `/v1/emails/${res.body.id}/cancel`);
  expect(cancel.status).toBe(409);
  expect(cancel.body.detail).toMatch(/is sending/);
  const sent = await emailReaches(s, res.body.id, 'sent');
  expect(sent.attempts).toEqual([expect.objectContaining({ number: 1, startedAt: sending.updatedAt, outcome: 'sent', error: null })]);
  expect(Date.parse(sent.attempts[0].finishedAt)).toBeGreaterThanOrEqual(Date.parse(sending.updatedAt));
});

test('cancel racing the worker: each email is either cancelled and never sent, or sent and the cancel refused', async () => {
  const batch = await s.call(
    'POST',
    '/v1/emails/batch',
    Array.from({ length: 40 }, (_, i) => ({ to: `race${i}@example.com`, subject: `race ${i}`, text: 'x' })),
  );
  const ids: string[] = batch.body.data.map((a: { id: string }) => a.id);
  const cancels = await Promise.all(ids.map((id) => s.call('POST', `/v1/emails/${id}/cancel`)));
  const finals = await Promise.all(
    ids.map(async (id, i) => (cancels[i].status === 200 ? (await s.call('GET', `/v1/emails/${id}`)).body : emailReaches(s, id, 'sent'))),
  );
  // A worker that held a job when its cancel came has finished it, so anything it sent has arrived.
  // (These came in one batch request: their batch job, and any job it handed an email on to.)
  await emailJobsFinished(s, ids);
  for (let i = 0; i < ids.length; i++) {
    const arrived = s.smtp.messages.filter((m) => m.emailId === ids[i]).length;
    if (cancels[i].status === 200) {
      expect([finals[i].status, arrived]).toEqual(['cancelled', 0]);
    } else {
      expect(cancels[i].status).toBe(409);
      expect([finals[i].status, arrived]).toEqual(['sent', 1]);
    }
  }
});
