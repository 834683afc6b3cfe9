/**
 * Per-application quota settings through the admin API: set on create and update, shown by GET,
 * bad values refused with 422 problem+json and nothing changed.
 */
import { startApi, type RunningApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import { createLogger } from '../../app/log';
import { request } from '../support/http';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { FAST_ENV } from '../support/stack';

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

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
  });
});
