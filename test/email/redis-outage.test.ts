/**
 * The outbox rule under a Redis outage, with the api and worker as separate processes on a
 * private redis-server (the shared one keeps running for the other suites): while Redis is down
 * the api still accepts (rows committed, rate limiter failing open); once Redis is back, empty,
 * the worker's sweeper enqueues what was accepted and every email is delivered once.
 */
import { createApiKeyService } from '../../app/auth/api-keys';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { eventually } from '../support/eventually';
import { request } from '../support/http';
import { startRole, stopProcess, type RoleProcess } from '../support/processes';
import { privateRedis, type PrivateRedis } from '../support/redis-server';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp';
import { FAST_ENV } from '../support/stack';

let redis: PrivateRedis;
let smtp: TestSmtpServer;
let t: TestEnvironment;
const running: RoleProcess[] = [];

beforeAll(async () => {
  redis = await privateRedis();
  await redis.start();
  smtp = await startSmtpServer();
  t = await createTestEnvironment('email_redis_down', {
    ...FAST_ENV,
    REDIS_URL: redis.url,
    SMTP_URL: smtp.url,
    // A real limit, so the fail-open path is the one exercised.
    RATE_LIMIT_PER_SECOND: '1000',
    RATE_LIMIT_BURST: '1000',
  });
});
afterAll(async () => {
  await Promise.all(running.map((p) => stopProcess(p.cli, 'SIGKILL')));
  await redis?.stop();
  await smtp?.close();
  await t?.cleanup();
});

test('Redis down while the api accepts 100 emails: all 202, all delivered once Redis is back', async () => {
  const { key } = await createApiKeyService({ db: t.db }).create({ name: 'outage', scopes: ['emails:send'] });
  const api = await startRole('api', t.env);
  const worker = await startRole('worker', t.env);
  running.push(api, worker);
  const send = (i: number) => request(api.url, key, 'POST', '/v1/emails', { to: `o${i}@example.com`, subject: `outage ${i}`, text: 'x' });

  const warm = await send(-1);
  expect(warm.status).toBe(202);
  expect(warm.headers.get('ratelimit-limit')).toBe('1000'); // the limiter is in the path while Redis is up
  await eventually(async () => smtp.messages.find((m) => m.emailId === warm.body.id), 'the first email');

  await redis.stop();
  const started = Date.now();
  const accepted = [];
  for (let i = 0; i < 100; i += 10) accepted.push(...(await Promise.all(Array.from({ length: 10 }, (_, k) => send(i + k)))));
  const elapsed = Date.now() - started;

  expect(accepted.map((r) => r.status)).toEqual(Array(100).fill(202));
  expect(accepted.every((r) => r.headers.get('ratelimit-limit') === null)).toBe(true); // failed open
  expect(elapsed).toBeLessThan(30_000); // no request waited for Redis's timeouts one after another
  const ids = accepted.map((r) => r.body.id as string);
  expect(await t.db.email.count({ where: { id: { in: ids }, status: 'queued' } })).toBe(100);

  const restartedAt = Date.now();
  await redis.start(); // a fresh, empty Redis: the jobs must come back from PostgreSQL
  await eventually(async () => ((await t.db.email.count({ where: { id: { in: ids }, status: 'sent' } })) === 100 ? true : undefined), 'all 100 sent', 60_000);
  const delivered = smtp.messages.filter((m) => ids.includes(m.emailId!));
  // Nothing was delivered while Redis was down: every one arrived after it came back.
  expect(delivered.filter((m) => m.receivedAt < restartedAt).map((m) => m.emailId)).toEqual([]);
  expect(new Set(delivered.map((m) => m.emailId)).size).toBe(100);
  expect(delivered).toHaveLength(100); // each exactly once
}, 150_000);
