/**
 * At-least-once delivery across a worker crash: the worker process is SIGKILLed in the middle of
 * 1,000 emails and started again. Every email must arrive and end `sent`; emails that were in
 * flight when it died may arrive twice (counted and reported), nothing else.
 */
import { createApiKeyService } from '../../app/auth/api-keys';
import { eventually } from '../support/eventually';
import { request } from '../support/http';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { startRole, stopProcess, type RoleProcess } from '../support/processes';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp';
import { FAST_ENV } from '../support/stack';

const TOTAL = 1_000;
const CONCURRENCY = 10;

let smtp: TestSmtpServer;
let t: TestEnvironment;
const running: RoleProcess[] = [];

beforeAll(async () => {
  smtp = await startSmtpServer();
  t = await createTestEnvironment('email_crash', { ...FAST_ENV, SMTP_URL: smtp.url, WORKER_CONCURRENCY: String(CONCURRENCY) });
});
afterAll(async () => {
  await Promise.all(running.map((p) => stopProcess(p.cli, 'SIGKILL')));
  await smtp?.close();
  await t?.cleanup();
});

test('worker SIGKILLed in the middle of 1,000 emails, then restarted: all arrive, all sent, duplicates only from in-flight ones', async () => {
  const { key } = await createApiKeyService({ db: t.db }).create({ name: 'crash', scopes: ['emails:send'] });
  const api = await startRole('api', t.env);
  running.push(api);
  // Slow the server a little so the kill lands mid-run, with sends in flight.
  smtp.setDelay(5);

  const ids: string[] = [];
  for (let b = 0; b < TOTAL / 100; b++) {
    const res = await request(api.url, key, 'POST', '/v1/emails/batch', Array.from({ length: 100 }, (_, i) => ({ to: `u${b * 100 + i}@example.com`, subject: `crash ${b * 100 + i}`, text: 'x' })));
    expect(res.status).toBe(202);
    ids.push(...res.body.data.map((a: { id: string }) => a.id));
  }

  // The worker starts once all are accepted: on a fast machine it could otherwise finish them
  // while the batches are still being posted, and the kill would land on an idle worker.
  let worker = await startRole('worker', t.env);
  running.push(worker);
  await smtp.waitForMessages(TOTAL * 0.3, 60_000);
  worker.cli.child.kill('SIGKILL');
  expect(await worker.cli.exited).toBe('SIGKILL');
  const atKill = smtp.messages.length;
  expect(atKill).toBeLessThan(TOTAL); // the kill did land in the middle

  worker = await startRole('worker', t.env);
  running.push(worker);
  await eventually(async () => ((await t.db.email.count({ where: { status: 'sent' } })) === TOTAL ? true : undefined), 'all emails sent', 90_000);

  const perId = new Map<string, number>();
  for (const m of smtp.messages) perId.set(m.emailId!, (perId.get(m.emailId!) ?? 0) + 1);
  const duplicates = smtp.messages.length - perId.size;
  console.log(`worker crash: ${atKill} of ${TOTAL} received before SIGKILL; ${smtp.messages.length} messages in total, ${duplicates} duplicate(s)`);

  expect([...perId.keys()].sort()).toEqual([...ids].sort()); // every accepted email arrived, nothing else did
  expect(await t.db.email.groupBy({ by: ['status'], _count: true })).toEqual([{ status: 'sent', _count: TOTAL }]);
  // Only what the dead worker held could be sent twice: at most its concurrency.
  expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
  // Its unfinished attempts are closed as abandoned, and no email was attempted more than twice.
  const abandoned = await t.db.emailAttempt.count({ where: { error: { startsWith: 'abandoned' } } });
  expect(abandoned).toBeLessThanOrEqual(CONCURRENCY);
  expect(await t.db.email.count({ where: { attemptCount: { gt: 2 } } })).toBe(0);
}, 180_000);
