/** Per-application rate limiting in Redis: headers on every answer, 429 problem+json past the budget. */
import { createApiKeyService } from '../../app/auth/api-keys';
import { rateLimitPolicy } from '../../app/http/rate-limit';
import { request } from '../support/http';
import { FAST_ENV, startStack, type Stack } from '../support/stack';

let s: Stack;

beforeAll(async () => {
  s = await startStack('email_rate_limit', { worker: false, env: { ...FAST_ENV, RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '4' } });
});
afterAll(async () => {
  await s?.stop();
});

test('the policy: BURST requests per window of BURST / PER_SECOND seconds', () => {
  expect(rateLimitPolicy(200, 400)).toEqual({ points: 400, windowSeconds: 2 });
  expect(rateLimitPolicy(1, 4)).toEqual({ points: 4, windowSeconds: 4 });
  expect(rateLimitPolicy(100, 10)).toEqual({ points: 100, windowSeconds: 1 }); // a burst below the rate means no burst
});

test('past the budget an application gets 429 with Retry-After and RateLimit headers; other applications are unaffected', async () => {
  const get = () => s.call('GET', '/v1/emails?limit=1');
  const answers = [];
  for (let i = 0; i < 5; i++) answers.push(await get());
  expect(answers.map((r) => `${r.status} remaining ${r.headers.get('ratelimit-remaining')} reset ${r.headers.get('ratelimit-reset')}`)).toEqual([
    expect.stringMatching(/^200 remaining 3 /),
    expect.stringMatching(/^200 remaining 2 /),
    expect.stringMatching(/^200 remaining 1 /),
    expect.stringMatching(/^200 remaining 0 /),
    expect.stringMatching(/^429 remaining 0 /),
  ]);
  for (const r of answers) {
    expect(r.headers.get('ratelimit-limit')).toBe('4');
    expect(r.headers.get('ratelimit-policy')).toBe('4;w=4');
    expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(0);
  }
  const limited = answers[4];
  expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(limited.body).toMatchObject({ status: 429, title: 'Too many requests', detail: expect.stringMatching(/rate limit of 4 requests per 4 s/) });
  const retryAfter = Number(limited.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(4);

  // Sending is limited too, and a refused send stores nothing.
  const before = await s.t.db.email.count();
  expect((await s.call('POST', '/v1/emails', { to: 'a@example.com', subject: 's', text: 't' })).status).toBe(429);
  expect(await s.t.db.email.count()).toBe(before);

  const otherApplication = await s.t.db.application.create({ data: { name: 'rate-other' } });
  const { key: other } = await createApiKeyService({ db: s.t.db }).create({ name: 'other', scopes: ['admin'], applicationId: otherApplication.id });
  expect((await request(s.base, other, 'GET', '/v1/emails?limit=1')).status).toBe(200);

  await new Promise((r) => setTimeout(r, retryAfter * 1000 + 100));
  expect((await get()).status).toBe(200);
});

test("an application's keys share its bucket, sized by its own settings; another application is not slowed", async () => {
  const keys = createApiKeyService({ db: s.t.db });
  const a = await s.t.db.application.create({ data: { name: 'rate-a', rateLimitPerSecond: 1, rateLimitBurst: 3 } });
  const b = await s.t.db.application.create({ data: { name: 'rate-b' } }); // no settings: RATE_LIMIT_PER_SECOND=1, RATE_LIMIT_BURST=4
  const a1 = (await keys.create({ name: 'a1', scopes: ['admin'], applicationId: a.id })).key;
  const a2 = (await keys.create({ name: 'a2', scopes: ['admin'], applicationId: a.id })).key;
  const bKey = (await keys.create({ name: 'b', scopes: ['admin'], applicationId: b.id })).key;
  const get = (key: string) => request(s.base, key, 'GET', '/v1/emails?limit=1');

  // Two keys of A spend A's three requests together; the fourth, from either key, is refused.
  const spent = [await get(a1), await get(a2), await get(a1)];
  expect(spent.map((r) => `${r.status} ${r.headers.get('ratelimit-policy')} remaining ${r.headers.get('ratelimit-remaining')}`)).toEqual([
    '200 3;w=3 remaining 2',
    '200 3;w=3 remaining 1',
    '200 3;w=3 remaining 0',
  ]);
  const refused = await get(a2);
  expect(refused.status).toBe(429);
  expect(refused.body).toMatchObject({ detail: expect.stringMatching(/rate limit of 3 requests per 3 s for application "rate-a"/) });
  expect((await get(a1)).status).toBe(429);

  // B, at the same moment, has its whole budget of the installation's defaults.
  const bAnswer = await get(bKey);
  expect(`${bAnswer.status} ${bAnswer.headers.get('ratelimit-policy')} remaining ${bAnswer.headers.get('ratelimit-remaining')}`).toBe('200 4;w=4 remaining 3');
});

test('requests refused by authentication do not count and carry no RateLimit headers', async () => {
  const res = await request(s.base, 'ee_notavalidkeynotavalidkey', 'GET', '/v1/emails');
  expect(res.status).toBe(401);
  expect(res.headers.get('ratelimit-limit')).toBeNull();
});
