/**
 * Per-application quotas (emails and events per minute and per UTC day): set through the admin
 * API, counted per unit in Redis in the rate limiter's script call, refused whole past the limit
 * with 429 quota-exceeded and Retry-After, nothing stored and nothing consumed by a refused or
 * failed request, one application's quota independent of another's, visible at .../usage, and
 * not enforced (fail open, like the rate limit) while Redis is unreachable.
 */
import { startApi, type RunningApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import { createLogger } from '../../app/log';
import { request, type ApiResponse } from '../support/http';
import { eventually } from '../support/eventually';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { privateRedis, type PrivateRedis } from '../support/redis-server';
import { FAST_ENV } from '../support/stack';

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const email = (n: number | string) => ({ from: 'quota@example.com', to: `q${n}@example.com`, subject: `quota ${n}`, text: 'x' });

/**
 * The minute windows are the clock's minutes: a test that counts within one waits, when needed,
 * until the next minute has begun, so its requests (a few seconds at most) share a window.
 */
async function awayFromMinuteEdge(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 45_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 250));
}

function quotaOf(res: ApiResponse): string {
  const h = (name: string) => res.headers.get(name);
  return h('x-quota-name') === null ? `${res.status} no quota headers` : `${res.status} ${h('x-quota-name')} ${h('x-quota-remaining')}/${h('x-quota-limit')}`;
}

function expectQuotaProblem(res: ApiResponse, detail: RegExp): number {
  expect(res.status).toBe(429);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: 'https://easeemail.dev/problems/quota-exceeded', title: 'Quota exceeded', status: 429, detail: expect.stringMatching(detail) });
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
  expect(res.headers.get('x-quota-reset')).toBe(String(retryAfter));
  return retryAfter;
}

describe('with Redis', () => {
  let t: TestEnvironment;
  let api: RunningApi;
  let base: string;
  let platformKey: string;

  beforeAll(async () => {
    t = await createTestEnvironment('apps_quotas', { ...FAST_ENV, API_KEY_CACHE_TTL_MS: '200' });
    api = await startApi(t.config, log);
    base = `http://127.0.0.1:${api.port}`;
    platformKey = (await createApiKeyService({ db: t.db }).create({ name: 'platform', scopes: ['platform:admin'] })).key;
  });
  afterAll(async () => {
    await api?.lifecycle.shutdown('test end');
    await t?.cleanup();
  });

  const admin = (method: string, path: string, body?: unknown) => request(base, platformKey, method, path, body);

  /** An application with these settings and a key of it. */
  async function application(name: string, settings: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
    const created = await admin('POST', '/v1/applications', { name, ...settings });
    expect(created.status).toBe(201);
    const key = await admin('POST', '/v1/api-keys', { name: `${name} key`, application: name, scopes: ['emails:send', 'emails:read', 'events:publish'] });
    expect(key.status).toBe(201);
    return { id: created.body.id, key: key.body.key };
  }

  const emailsOf = (applicationId: string) => t.db.email.count({ where: { applicationId } });
  const eventsOf = (applicationId: string) => t.db.event.count({ where: { applicationId } });
  async function usage(name: string): Promise<Record<string, { used: number; remaining: number; limit: number }>> {
    const res = await admin('GET', `/v1/applications/${name}/usage`);
    expect(res.status).toBe(200);
    return Object.fromEntries((res.body.quotas as { setting: string; used: number; remaining: number; limit: number }[]).map(({ setting, used, remaining, limit }) => [setting, { used, remaining, limit }]));
  }

  describe('settings', () => {
    it('are set on create and update, shown by GET, and null removes one', async () => {
      const created = await admin('POST', '/v1/applications', { name: 'quota-settings', emailQuotaPerMinute: 100, emailQuotaPerDay: 10_000, eventQuotaPerDay: 500 });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ emailQuotaPerMinute: 100, emailQuotaPerDay: 10_000, eventQuotaPerMinute: null, eventQuotaPerDay: 500 });
      const patched = await admin('PATCH', '/v1/applications/quota-settings', { eventQuotaPerMinute: 50, emailQuotaPerDay: null });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ emailQuotaPerMinute: 100, emailQuotaPerDay: null, eventQuotaPerMinute: 50, eventQuotaPerDay: 500 });
      expect((await admin('GET', '/v1/applications/quota-settings')).body).toMatchObject({ emailQuotaPerMinute: 100, emailQuotaPerDay: null, eventQuotaPerMinute: 50, eventQuotaPerDay: 500 });
    });

    it.each([
      ['negative', { emailQuotaPerMinute: -5 }, '/emailQuotaPerMinute'],
      ['zero', { eventQuotaPerDay: 0 }, '/eventQuotaPerDay'],
      ['not an integer', { emailQuotaPerDay: 10.5 }, '/emailQuotaPerDay'],
      ['a string', { eventQuotaPerMinute: '5' }, '/eventQuotaPerMinute'],
      ['absurd', { emailQuotaPerDay: 1e12 }, '/emailQuotaPerDay'],
      ['absurd per minute', { emailQuotaPerMinute: 5_000_000 }, '/emailQuotaPerMinute'],
      ['per minute above per day', { emailQuotaPerMinute: 100, emailQuotaPerDay: 10 }, '/emailQuotaPerMinute'],
      ['nested under quotas (not a setting)', { quotas: { emailsPerDay: 5 } }, undefined],
    ])('%s: 422 problem+json naming the field, nothing changed', async (_what, settings, path) => {
      const before = (await admin('GET', '/v1/applications/quota-settings')).body;
      for (const res of [await admin('PATCH', '/v1/applications/quota-settings', settings), await admin('POST', '/v1/applications', { name: 'quota-bad', ...settings })]) {
        expect(res.status).toBe(422);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        if (path) expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
      }
      expect((await admin('GET', '/v1/applications/quota-settings')).body).toEqual(before);
      expect((await admin('GET', '/v1/applications/quota-bad')).status).toBe(404);
    });

    it('a change is checked against the settings it keeps: per minute above the per day already set is 422', async () => {
      const before = (await admin('GET', '/v1/applications/quota-settings')).body;
      expect(before.eventQuotaPerDay).toBe(500);
      const res = await admin('PATCH', '/v1/applications/quota-settings', { eventQuotaPerMinute: 600 });
      expect(res.status).toBe(422);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ detail: expect.stringMatching(/eventQuotaPerMinute must not exceed eventQuotaPerDay \(500\)/), errors: [{ path: '/eventQuotaPerMinute', message: expect.any(String) }] });
      expect((await admin('GET', '/v1/applications/quota-settings')).body).toEqual(before);
    });

    it('the usage of an application without quotas lists none', async () => {
      const res = await admin('GET', '/v1/applications/default/usage');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id: expect.any(String), name: 'default', quotas: [] });
      expect((await admin('GET', '/v1/applications/nope/usage')).status).toBe(404);
    });
  });

  it('emailQuotaPerMinute 5: five emails accepted, the sixth 429 with Retry-After, exactly five stored', async () => {
    const app = await application('quota-five', { emailQuotaPerMinute: 5, emailQuotaPerDay: 1_000 });
    await awayFromMinuteEdge();
    const answers: ApiResponse[] = [];
    for (let i = 0; i < 6; i++) answers.push(await request(base, app.key, 'POST', '/v1/emails', email(i)));
    expect(answers.map(quotaOf)).toEqual([
      '202 emailQuotaPerMinute 4/5',
      '202 emailQuotaPerMinute 3/5',
      '202 emailQuotaPerMinute 2/5',
      '202 emailQuotaPerMinute 1/5',
      '202 emailQuotaPerMinute 0/5',
      '429 emailQuotaPerMinute 0/5',
    ]);
    const retryAfter = expectQuotaProblem(answers[5], /emailQuotaPerMinute \(5 emails per minute\): 5 used, 0 left/);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Within a second of the end of the current minute.
    expect(Math.abs(retryAfter - (60 - (Date.now() % 60_000) / 1000))).toBeLessThanOrEqual(2);
    // The rate limit's headers are there as on every answer.
    expect(answers[5].headers.get('ratelimit-limit')).not.toBeNull();
    expect(await emailsOf(app.id)).toBe(5);
    expect(await usage('quota-five')).toEqual({ emailQuotaPerMinute: { used: 5, remaining: 0, limit: 5 }, emailQuotaPerDay: { used: 5, remaining: 995, limit: 1_000 } });
    // Reading is not sending: GETs pass, and do not count.
    expect((await request(base, app.key, 'GET', '/v1/emails?limit=1')).status).toBe(200);
  });

  it('a batch counts each email; one that would exceed the quota is refused whole and consumes nothing', async () => {
    const app = await application('quota-batch', { emailQuotaPerMinute: 5 });
    await awayFromMinuteEdge();
    const first = await request(base, app.key, 'POST', '/v1/emails/batch', [email(1), email(2), email(3)]);
    expect(quotaOf(first)).toBe('202 emailQuotaPerMinute 2/5');

    const tooMany = await request(base, app.key, 'POST', '/v1/emails/batch', [email(4), email(5), email(6)]);
    expect(quotaOf(tooMany)).toBe('429 emailQuotaPerMinute 2/5');
    expectQuotaProblem(tooMany, /needs 3 emails; emailQuotaPerMinute \(5 emails per minute\): 3 used, 2 left/);
    expect(await emailsOf(app.id)).toBe(3);
    expect((await usage('quota-batch')).emailQuotaPerMinute).toEqual({ used: 3, remaining: 2, limit: 5 });

    // The two left are still there: a batch of two fits exactly, then nothing does.
    expect(quotaOf(await request(base, app.key, 'POST', '/v1/emails/batch', [email(4), email(5)]))).toBe('202 emailQuotaPerMinute 0/5');
    expect(quotaOf(await request(base, app.key, 'POST', '/v1/emails', email(6)))).toBe('429 emailQuotaPerMinute 0/5');
    expect(await emailsOf(app.id)).toBe(5);
  });

  it('a batch larger than the quota itself is told it can never fit', async () => {
    const app = await application('quota-never', { emailQuotaPerMinute: 2 });
    await awayFromMinuteEdge();
    const res = await request(base, app.key, 'POST', '/v1/emails/batch', [email(1), email(2), email(3)]);
    expectQuotaProblem(res, /3 emails in one request can never fit emailQuotaPerMinute: send fewer at a time/);
    expect(await emailsOf(app.id)).toBe(0);
  });

  it('a request refused after the check (invalid, conflicting) or answered by an idempotent replay gives its units back', async () => {
    const app = await application('quota-refund', { emailQuotaPerMinute: 3 });
    await awayFromMinuteEdge();
    const send = (body: unknown, headers: Record<string, string> = {}) => request(base, app.key, 'POST', '/v1/emails', body, headers);

    const invalid = await send({ to: 'not an address', subject: 's', text: 't' });
    expect(invalid.status).toBe(422);
    expect(quotaOf(invalid)).toBe('422 emailQuotaPerMinute 3/3');
    const invalidBatch = await request(base, app.key, 'POST', '/v1/emails/batch', [email(1), { to: 'x' }]);
    expect(invalidBatch.status).toBe(422);
    expect((await usage('quota-refund')).emailQuotaPerMinute).toEqual({ used: 0, remaining: 3, limit: 3 });

    const accepted = await send(email('once'), { 'Idempotency-Key': 'quota-once' });
    expect(quotaOf(accepted)).toBe('202 emailQuotaPerMinute 2/3');
    const replayed = await send(email('once'), { 'Idempotency-Key': 'quota-once' });
    expect(replayed.status).toBe(202);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.body).toEqual(accepted.body);
    expect(quotaOf(replayed)).toBe('202 emailQuotaPerMinute 2/3');
    const conflicting = await send(email('other'), { 'Idempotency-Key': 'quota-once' });
    expect(conflicting.status).toBe(409);

    expect((await usage('quota-refund')).emailQuotaPerMinute).toEqual({ used: 1, remaining: 2, limit: 3 });
    expect(await emailsOf(app.id)).toBe(1);
  });

  it('application A at its quota does not affect application B', async () => {
    const a = await application('quota-a', { emailQuotaPerMinute: 1, eventQuotaPerMinute: 1 });
    const b = await application('quota-b', { emailQuotaPerMinute: 2 });
    const c = await application('quota-c'); // no quota at all
    await awayFromMinuteEdge();
    expect(quotaOf(await request(base, a.key, 'POST', '/v1/emails', email('a1')))).toBe('202 emailQuotaPerMinute 0/1');
    expect(quotaOf(await request(base, a.key, 'POST', '/v1/emails', email('a2')))).toBe('429 emailQuotaPerMinute 0/1');

    expect(quotaOf(await request(base, b.key, 'POST', '/v1/emails', email('b1')))).toBe('202 emailQuotaPerMinute 1/2');
    expect(quotaOf(await request(base, b.key, 'POST', '/v1/emails', email('b2')))).toBe('202 emailQuotaPerMinute 0/2');
    const unlimited = await request(base, c.key, 'POST', '/v1/emails/batch', [email('c1'), email('c2'), email('c3')]);
    expect(quotaOf(unlimited)).toBe('202 no quota headers');
    // A platform key naming B counts against B's quota, not A's.
    const viaPlatform = await request(base, platformKey, 'POST', '/v1/emails', email('b3'), { 'X-Application': 'quota-b' });
    expect(quotaOf(viaPlatform)).toBe('429 emailQuotaPerMinute 0/2');

    // A's email quota is spent; its event quota is its own.
    expect(quotaOf(await request(base, a.key, 'POST', '/v1/events', { type: 'order.paid', payload: {} }))).toBe('202 eventQuotaPerMinute 0/1');
    expect([await emailsOf(a.id), await emailsOf(b.id), await emailsOf(c.id)]).toEqual([1, 2, 3]);
  });

  it('eventQuotaPerMinute counts events published, not emails', async () => {
    const app = await application('quota-events', { eventQuotaPerMinute: 2 });
    await awayFromMinuteEdge();
    const publish = (n: number) => request(base, app.key, 'POST', '/v1/events', { type: 'order.paid', payload: { n } });
    expect([quotaOf(await publish(1)), quotaOf(await publish(2))]).toEqual(['202 eventQuotaPerMinute 1/2', '202 eventQuotaPerMinute 0/2']);
    expectQuotaProblem(await publish(3), /needs 1 event; eventQuotaPerMinute \(2 events per minute\): 2 used, 0 left/);
    expect(await eventsOf(app.id)).toBe(2);
    expect(quotaOf(await request(base, app.key, 'POST', '/v1/emails', email('e')))).toBe('202 no quota headers');
  });

  it('emailQuotaPerDay: Retry-After runs until the end of the UTC day, also when the minute quota is spent too', async () => {
    const app = await application('quota-day', { emailQuotaPerMinute: 2, emailQuotaPerDay: 2 });
    await awayFromMinuteEdge();
    const answers: ApiResponse[] = [];
    for (let i = 0; i < 3; i++) answers.push(await request(base, app.key, 'POST', '/v1/emails', email(i)));
    // The headers show the quota with the least room left; of two as tight, the one that resets later.
    expect(answers.map(quotaOf)).toEqual(['202 emailQuotaPerDay 1/2', '202 emailQuotaPerDay 0/2', '429 emailQuotaPerDay 0/2']);
    // Both are exceeded; Retry-After is when both have room again.
    const retryAfter = expectQuotaProblem(answers[2], /emailQuotaPerMinute \(2 emails per minute\): 2 used, 0 left; emailQuotaPerDay \(2 emails per UTC day\): 2 used, 0 left; retry after \d+ s, when emailQuotaPerDay's window resets/);
    const untilMidnight = 86_400 - (Date.now() % 86_400_000) / 1000;
    expect(Math.abs(retryAfter - untilMidnight)).toBeLessThanOrEqual(2);
    const { body } = await admin('GET', '/v1/applications/quota-day/usage');
    const midnight = new Date(Math.ceil(Date.now() / 86_400_000) * 86_400_000).toISOString();
    expect(body.quotas).toEqual([
      { setting: 'emailQuotaPerMinute', counts: 'emails', window: 'minute', limit: 2, used: 2, remaining: 0, resetsAt: expect.stringMatching(/:00\.000Z$/) },
      { setting: 'emailQuotaPerDay', counts: 'emails', window: 'day', limit: 2, used: 2, remaining: 0, resetsAt: midnight },
    ]);
  });

  it('the rate limit and the quota check share one bucket; a request refused by the rate limit consumes no quota', async () => {
    const app = await application('quota-rate', { rateLimitPerSecond: 1, rateLimitBurst: 3, emailQuotaPerMinute: 10 });
    await awayFromMinuteEdge();
    const read = await request(base, app.key, 'GET', '/v1/emails?limit=1'); // the plain rate-limit call
    const sent = await request(base, app.key, 'POST', '/v1/emails', email(1)); // the rate limit and the quota in one script
    const read2 = await request(base, app.key, 'GET', '/v1/emails?limit=1');
    expect([read, sent, read2].map((r) => `${r.status} ${r.headers.get('ratelimit-remaining')}/${r.headers.get('ratelimit-limit')}`)).toEqual(['200 2/3', '202 1/3', '200 0/3']);
    const limited = await request(base, app.key, 'POST', '/v1/emails', email(2));
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ type: 'https://easeemail.dev/problems/rate-limited', detail: expect.stringMatching(/rate limit of 3 requests per 3 s/) });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await usage('quota-rate')).emailQuotaPerMinute).toEqual({ used: 1, remaining: 9, limit: 10 });
    expect(await emailsOf(app.id)).toBe(1);
  });

  it('a quota set or changed later applies within API_KEY_CACHE_TTL_MS', async () => {
    const app = await application('quota-later');
    await awayFromMinuteEdge();
    expect(quotaOf(await request(base, app.key, 'POST', '/v1/emails', email(1)))).toBe('202 no quota headers');
    expect((await admin('PATCH', '/v1/applications/quota-later', { emailQuotaPerMinute: 1 })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    // Counting starts when the quota is set: emails accepted before it are not counted.
    expect(quotaOf(await request(base, app.key, 'POST', '/v1/emails', email(2)))).toBe('202 emailQuotaPerMinute 0/1');
    expect(quotaOf(await request(base, app.key, 'POST', '/v1/emails', email(3)))).toBe('429 emailQuotaPerMinute 0/1');
    expect((await admin('PATCH', '/v1/applications/quota-later', { emailQuotaPerMinute: null })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(quotaOf(await request(base, app.key, 'POST', '/v1/emails', email(4)))).toBe('202 no quota headers');
    expect(await emailsOf(app.id)).toBe(3);
  });

  it('concurrent requests never accept more than the quota', async () => {
    const app = await application('quota-race', { emailQuotaPerMinute: 7 });
    await awayFromMinuteEdge();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => request(base, app.key, 'POST', '/v1/emails', email(i))));
    expect(answers.filter((r) => r.status === 202)).toHaveLength(7);
    expect(answers.filter((r) => r.status === 429)).toHaveLength(13);
    expect(await emailsOf(app.id)).toBe(7);
  });
});

describe('Redis unreachable', () => {
  let redis: PrivateRedis;
  let t: TestEnvironment;
  let api: RunningApi;

  beforeAll(async () => {
    redis = await privateRedis();
    await redis.start();
    t = await createTestEnvironment('apps_quotas_down', { ...FAST_ENV, REDIS_URL: redis.url });
  });
  afterAll(async () => {
    // Redis back first, and the api connected again, so its connections close cleanly.
    await redis?.start();
    if (api) await eventually(async () => ((await fetch(`http://127.0.0.1:${api.port}/health/ready`)).status === 200 ? true : undefined), 'the api ready again');
    await api?.lifecycle.shutdown('test end');
    await redis?.stop();
    await t?.cleanup();
  });

  it('quotas are not enforced (fail open, like the rate limit); their usage is 503 naming Redis', async () => {
    const application = await t.db.application.create({ data: { name: 'quota-down', emailQuotaPerMinute: 1 } });
    const { key } = await createApiKeyService({ db: t.db }).create({ name: 'down', scopes: ['emails:send'], applicationId: application.id });
    const platformKey = (await createApiKeyService({ db: t.db }).create({ name: 'platform', scopes: ['platform:admin'] })).key;
    api = await startApi(t.config, log);
    const base = `http://127.0.0.1:${api.port}`;
    await awayFromMinuteEdge();
    expect(quotaOf(await request(base, key, 'POST', '/v1/emails', email(0)))).toBe('202 emailQuotaPerMinute 0/1');
    expect(quotaOf(await request(base, key, 'POST', '/v1/emails', email(1)))).toBe('429 emailQuotaPerMinute 0/1');

    await redis.stop();
    const answers: ApiResponse[] = [];
    for (let i = 2; i < 5; i++) answers.push(await request(base, key, 'POST', '/v1/emails', email(i)));
    expect(answers.map(quotaOf)).toEqual(Array(3).fill('202 no quota headers'));
    expect(answers.every((r) => r.headers.get('ratelimit-limit') === null)).toBe(true);
    expect(await t.db.email.count({ where: { applicationId: application.id } })).toBe(4);

    const usage = await request(base, platformKey, 'GET', '/v1/applications/quota-down/usage');
    expect(usage.status).toBe(503);
    expect(usage.body).toMatchObject({ type: 'https://easeemail.dev/problems/service-unavailable', detail: expect.stringMatching(/Redis/) });
    expect(usage.headers.get('retry-after')).toBe('5');
  }, 60_000);
});
