/**
 * Applications from the platform team's side: the admin API (platform keys only), the CLI, which
 * application a request acts on (X-Application), and what disabling does.
 */
import { startApi, type RunningApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import { createLogger } from '../../app/log';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { runCli } from '../support/processes';

let t: TestEnvironment;
let api: RunningApi;
let base: string;
let platformKey: string;

beforeAll(async () => {
  t = await createTestEnvironment('apps_admin', { API_KEY_CACHE_TTL_MS: '200' });
  api = await startApi(t.config, createLogger({ level: 'silent' }));
  base = `http://127.0.0.1:${api.port}`;
  platformKey = (await createApiKeyService({ db: t.db }).create({ name: 'platform', scopes: ['platform:admin'] })).key;
});
afterAll(async () => {
  await api?.lifecycle.shutdown('test end');
  await t?.cleanup();
});

function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  return fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
}

async function expectProblem(res: Response, status: number, detail: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as { detail: string };
  expect(body.detail).toMatch(detail);
}

async function keyOf(application: string, scopes: string[]): Promise<string> {
  const res = await call('POST', '/v1/api-keys', platformKey, { name: `${application} key`, application, scopes });
  expect(res.status).toBe(201);
  return ((await res.json()) as { key: string }).key;
}

/** Repeats `probe` until it gives `status` (the api caches look-ups for API_KEY_CACHE_TTL_MS = 200 ms). */
async function eventuallyStatus(probe: () => Promise<Response>, status: number): Promise<Response> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const res = await probe();
    if (res.status === status || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the admin API', () => {
  it('creates, lists, reads, changes, disables and enables applications', async () => {
    const created = await call('POST', '/v1/applications', platformKey, { name: 'billing', description: 'Invoices', rateLimitPerSecond: 50, allowedSenderDomains: ['Example.com'] });
    expect(created.status).toBe(201);
    const app = (await created.json()) as { id: string };
    expect(app).toMatchObject({ name: 'billing', description: 'Invoices', rateLimitPerSecond: 50, rateLimitBurst: null, allowedSenderDomains: ['example.com'], disabledAt: null });

    await expectProblem(await call('POST', '/v1/applications', platformKey, { name: 'billing' }), 409, /already exists/);
    await expectProblem(await call('POST', '/v1/applications', platformKey, { name: 'Bad Name' }), 422, /name/);
    await expectProblem(await call('POST', '/v1/applications', platformKey, { name: 'x', rateLimitPerSecond: 0 }), 422, /rateLimitPerSecond/);

    const list = (await (await call('GET', '/v1/applications', platformKey)).json()) as { data: { name: string }[] };
    expect(list.data.map((a) => a.name)).toEqual(['billing', 'default']);
    expect(await (await call('GET', `/v1/applications/${app.id}`, platformKey)).json()).toMatchObject({ name: 'billing' });
    expect(await (await call('GET', '/v1/applications/billing', platformKey)).json()).toMatchObject({ id: app.id });
    await expectProblem(await call('GET', '/v1/applications/nope', platformKey), 404, /no application "nope"/);

    const patched = await call('PATCH', '/v1/applications/billing', platformKey, { defaultFrom: 'Billing <billing@example.com>', rateLimitPerSecond: null });
    expect(await patched.json()).toMatchObject({ defaultFrom: '"Billing" <billing@example.com>', rateLimitPerSecond: null, description: 'Invoices' });

    const appKey = await keyOf('billing', ['emails:read']);
    expect((await call('GET', '/v1/emails', appKey)).status).toBe(200);
    expect(await (await call('POST', '/v1/applications/billing/disable', platformKey)).json()).toMatchObject({ disabledAt: expect.any(String) });
    await expectProblem(await eventuallyStatus(() => call('GET', '/v1/emails', appKey), 403), 403, /application "billing" is disabled/);
    expect(await (await call('POST', '/v1/applications/billing/enable', platformKey)).json()).toMatchObject({ disabledAt: null });
    expect((await eventuallyStatus(() => call('GET', '/v1/emails', appKey), 200)).status).toBe(200);
  });

  it('is for platform keys only', async () => {
    const admin = await keyOf('default', ['admin']);
    await expectProblem(await call('GET', '/v1/applications', admin), 403, /platform keys/);
    await expectProblem(await call('POST', '/v1/applications', admin, { name: 'sneaky' }), 403, /platform keys/);
    await expectProblem(await call('POST', '/v1/api-keys', admin, { name: 'k', application: 'default', scopes: ['admin'] }), 403, /platform keys/);
    // Platform keys are made by the CLI or BOOTSTRAP_API_KEY only, never over HTTP.
    await expectProblem(await call('POST', '/v1/api-keys', platformKey, { name: 'k', application: 'default', scopes: ['platform:admin'] }), 422, /scopes/);
  });

  it('lists keys: an admin key its own application\'s, a platform key all or the named application\'s', async () => {
    await call('POST', '/v1/applications', platformKey, { name: 'shop' });
    const shopAdmin = await keyOf('shop', ['admin']);
    const own = (await (await call('GET', '/v1/api-keys', shopAdmin)).json()) as { data: { name: string }[] };
    expect(own.data.map((k) => k.name)).toEqual(['shop key']);
    const all = (await (await call('GET', '/v1/api-keys', platformKey)).json()) as { data: { name: string }[] };
    expect(all.data.map((k) => k.name)).toEqual(expect.arrayContaining(['platform', 'shop key', 'default key']));
    const named = (await (await call('GET', '/v1/api-keys', platformKey, undefined, { 'X-Application': 'shop' })).json()) as { data: { name: string }[] };
    expect(named.data.map((k) => k.name)).toEqual(['shop key']);
  });
});

describe('which application a request acts on', () => {
  it('a platform key must name one with X-Application, by name or id', async () => {
    await expectProblem(await call('GET', '/v1/emails', platformKey), 400, /X-Application/);
    await expectProblem(await call('GET', '/v1/emails', platformKey, undefined, { 'X-Application': 'nope' }), 404, /no application "nope"/);
    expect((await call('GET', '/v1/emails', platformKey, undefined, { 'X-Application': 'default' })).status).toBe(200);
    const { id } = (await (await call('GET', '/v1/applications/default', platformKey)).json()) as { id: string };
    expect((await call('GET', '/v1/emails', platformKey, undefined, { 'X-Application': id })).status).toBe(200);
  });

  it("an application's key acts on its own application only, and cannot tell whether another exists", async () => {
    const key = await keyOf('default', ['emails:read']);
    expect((await call('GET', '/v1/emails', key, undefined, { 'X-Application': 'default' })).status).toBe(200);
    await call('POST', '/v1/applications', platformKey, { name: 'other' });
    const existing = await call('GET', '/v1/emails', key, undefined, { 'X-Application': 'other' });
    const missing = await call('GET', '/v1/emails', key, undefined, { 'X-Application': 'does-not-exist' });
    expect([existing.status, missing.status]).toEqual([403, 403]);
    expect(((await existing.json()) as { detail: string }).detail).toBe(((await missing.json()) as { detail: string }).detail);
  });
});

// Each CLI call is a process of its own (seconds on a loaded machine): a few per test, in order.
describe('the CLI', () => {
  let crmKey: string;

  it('creates and lists applications, refusing a taken name', async () => {
    const created = await runCli(['applications', 'create', 'crm', '--description', 'Customer mail', '--json'], t.env);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.output.trim().split('\n').pop()!)).toMatchObject({ name: 'crm', description: 'Customer mail' });
    expect(await runCli(['applications', 'create', 'crm'], t.env)).toMatchObject({ code: 1, output: expect.stringMatching(/already exists/) });
    expect((await runCli(['applications', 'list'], t.env)).output).toMatch(/active\s+crm\s+\(Customer mail\)/);
  });

  it('makes a key of an application and lists its keys', async () => {
    const key = await runCli(['api-keys', 'create', '--application', 'crm', '--name', 'crm-sender', '--scopes', 'emails:send,emails:read', '--json'], t.env);
    expect(key.code).toBe(0);
    const made = JSON.parse(key.output.trim().split('\n').pop()!) as { key: string; application: string };
    expect(made.application).toBe('crm');
    crmKey = made.key;
    expect((await call('GET', '/v1/emails', crmKey)).status).toBe(200);
    expect((await runCli(['api-keys', 'list', '--application', 'crm'], t.env)).output).toMatch(/crm\s+crm-sender/);
  });

  it('refuses an unknown application, and a platform key with an application', async () => {
    expect(await runCli(['api-keys', 'create', '--application', 'nope', '--name', 'x', '--scopes', 'admin'], t.env)).toMatchObject({ code: 1, output: expect.stringMatching(/no application "nope"/) });
    expect(await runCli(['api-keys', 'create', '--application', 'crm', '--name', 'x', '--scopes', 'platform:admin'], t.env)).toMatchObject({ code: 2, output: expect.stringMatching(/belongs to no application/) });
  });

  it('disables an application: its keys stop working', async () => {
    expect((await runCli(['applications', 'disable', 'crm'], t.env)).code).toBe(0);
    await expectProblem(await eventuallyStatus(() => call('GET', '/v1/emails', crmKey), 403), 403, /disabled/);
  });

  it('makes a platform key, and a key without --application goes to `default`', async () => {
    const platform = await runCli(['api-keys', 'create', '--name', 'ops', '--scopes', 'platform:admin', '--json'], t.env);
    const made = JSON.parse(platform.output.trim().split('\n').pop()!) as { key: string; applicationId: string | null };
    expect(made.applicationId).toBeNull();
    expect((await call('GET', '/v1/applications', made.key)).status).toBe(200);
    const plain = await runCli(['api-keys', 'create', '--name', 'old-style', '--scopes', 'emails:read', '--json'], t.env);
    expect(JSON.parse(plain.output.trim().split('\n').pop()!)).toMatchObject({ application: 'default' });
  });
});
