/**
 * The isolation matrix, generated from /openapi.json: application A gets resources of every kind,
 * then application B (its own admin key, and a platform key naming B) calls EVERY operation of
 * the document against A's ids. Reads by id and writes by id answer 404 exactly as for an id that
 * does not exist; lists show none of A's ids; creates land in B; platform routes refuse B's key.
 * Afterwards nothing of A has changed, in the API or in the database.
 *
 * The table below must name every operation of the document and nothing else: a new route fails
 * this test until its row says how it must behave (and its path parameter's kind is known).
 */
import { startApi, type RunningApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import { createLogger } from '../../app/log';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';

type Outcome =
  /** 404 problem, the same as for a random id. */
  | 'not-found'
  /** 200 list without any of A's ids. */
  | 'own-page'
  /** 2xx, a new resource of B's. */
  | 'creates-own'
  /** 403 for B's application key (platform keys manage every application). */
  | 'platform-only';

interface Row {
  outcome: Outcome;
  /** A valid body (a function when each caller needs its own, e.g. a unique name). */
  body?: unknown | ((caller: 'key' | 'platform') => unknown);
}

const email = { from: 'b@example.com', to: 'someone@example.com', subject: 'hi', text: 'hello' };
const MATRIX: Record<string, Row> = {
  sendEmail: { outcome: 'creates-own', body: email },
  sendEmailBatch: { outcome: 'creates-own', body: [email] },
  listEmails: { outcome: 'own-page' },
  getEmail: { outcome: 'not-found' },
  cancelEmail: { outcome: 'not-found' },
  // B may use the name A uses ('welcome'): names are unique per application.
  createTemplate: { outcome: 'creates-own', body: (caller: string) => ({ name: caller === 'key' ? 'welcome' : 'welcome-too', subject: 'B welcome', text: 'b' }) },
  listTemplates: { outcome: 'own-page' },
  getTemplate: { outcome: 'not-found' },
  updateTemplate: { outcome: 'not-found', body: { subject: 'taken over' } },
  deleteTemplate: { outcome: 'not-found' },
  renderTemplate: { outcome: 'not-found', body: { data: { name: 'x' } } },
  createWebhookEndpoint: { outcome: 'creates-own', body: { url: 'https://b.example.com/hook' } },
  listWebhookEndpoints: { outcome: 'own-page' },
  getWebhookEndpoint: { outcome: 'not-found' },
  updateWebhookEndpoint: { outcome: 'not-found', body: { description: 'taken over' } },
  deleteWebhookEndpoint: { outcome: 'not-found' },
  getWebhookEndpointSecret: { outcome: 'not-found' },
  // Nor may B switch the scheme of A's endpoint.
  rotateWebhookEndpointSecret: { outcome: 'not-found', body: { signatureScheme: 'ed25519' } },
  publishEvent: { outcome: 'creates-own', body: { type: 'order.paid', payload: { by: 'B' } } },
  getEvent: { outcome: 'not-found' },
  retryWebhookDelivery: { outcome: 'not-found' },
  listEvents: { outcome: 'own-page' },
  listWebhookEndpointDeliveries: { outcome: 'not-found' },
  getWebhookEndpointStats: { outcome: 'not-found' },
  getWebhookDelivery: { outcome: 'not-found' },
  recoverWebhookEndpoint: { outcome: 'not-found', body: { since: '2026-11-30T00:00:00Z' } },
  getWebhookRecovery: { outcome: 'not-found' },
  // B may suppress an address of its own; A's entry stays A's.
  addSuppression: { outcome: 'creates-own', body: { address: 'b-blocked@example.com' } },
  listSuppressions: { outcome: 'own-page' },
  removeSuppression: { outcome: 'not-found' },
  // B may register the name A uses: event-type names are unique per application.
  createEventType: { outcome: 'creates-own', body: (caller: string) => ({ name: caller === 'key' ? 'order.paid' : 'order.paid-too' }) },
  listEventTypes: { outcome: 'own-page' },
  getEventType: { outcome: 'not-found' },
  updateEventType: { outcome: 'not-found', body: { description: 'taken over', deprecated: true } },
  listApiKeys: { outcome: 'own-page' },
  createApiKey: { outcome: 'platform-only', body: { name: 'planted', application: 'app-a', scopes: ['admin'] } },
  revokeApiKey: { outcome: 'platform-only' },
  createApplication: { outcome: 'platform-only', body: { name: 'planted' } },
  listApplications: { outcome: 'platform-only' },
  getApplication: { outcome: 'platform-only' },
  getApplicationUsage: { outcome: 'platform-only' },
  updateApplication: { outcome: 'platform-only', body: { description: 'taken over' } },
  disableApplication: { outcome: 'platform-only' },
  enableApplication: { outcome: 'platform-only' },
};

const MISSING_ID = '00000000-0000-4000-8000-00000000dead';
/** Path parameters that are not ids: what "does not exist" looks like for them. */
const MISSING_BY_KIND: Record<string, string> = { suppressions: 'nobody-listed@example.com' };

/** Which of A's resources a path parameter names, by the path's first segment; each value is tried. */
type Resources = Record<string, string[]>;

let t: TestEnvironment;
let api: RunningApi;
let base: string;
let platformKey: string;
const keys: Record<'a' | 'b', string> = { a: '', b: '' };
const a: Resources = {};

function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  return fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
}
async function ok<T = Record<string, unknown>>(res: Response | Promise<Response>, status = 200): Promise<T> {
  const r = await res;
  const text = await r.text();
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Everything of A the API shows, read with A's key (and the platform key for A's application). */
async function snapshotOfA() {
  const get = (path: string) => ok(call('GET', path, keys.a));
  const { data: apiKeys } = await ok<{ data: Record<string, unknown>[] }>(call('GET', '/v1/api-keys', keys.a));
  const counts = await t.db.$queryRawUnsafe<Record<string, number>[]>(
    `SELECT ${['emails', 'email_attempts', 'templates', 'webhook_endpoints', 'events', 'webhook_deliveries', 'idempotency_records', 'api_keys', 'suppressions', 'event_types']
      .map((table) => `(SELECT count(*)::int FROM "${table}" WHERE "applicationId" = $1) AS "${table}"`)
      .join(', ')},
      (SELECT count(*)::int FROM webhook_deliveries d JOIN webhook_endpoints p ON p.id = d."endpointId" WHERE p."applicationId" = $1) AS "deliveries to A's endpoints"`,
    a.applications[0],
  );
  return {
    email: await get(`/v1/emails/${a.emails[0]}`),
    emails: await get('/v1/emails'),
    template: await get(`/v1/templates/${a.templates[0]}`),
    templates: await get('/v1/templates'),
    endpoint: await get(`/v1/webhook-endpoints/${a['webhook-endpoints'][0]}`),
    secret: await get(`/v1/webhook-endpoints/${a['webhook-endpoints'][0]}/secret`),
    endpoints: await get('/v1/webhook-endpoints'),
    event: await get(`/v1/events/${a.events[0]}`),
    suppressions: await get('/v1/suppressions'),
    eventType: await get(`/v1/event-types/${a['event-types'][0]}`),
    eventTypes: await get('/v1/event-types'),
    application: await ok(call('GET', `/v1/applications/${a.applications[0]}`, platformKey)),
    apiKeys: apiKeys.map(({ lastUsedAt: _ignored, ...k }) => k),
    counts,
  };
}

beforeAll(async () => {
  t = await createTestEnvironment('apps_matrix', { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
  api = await startApi(t.config, createLogger({ level: 'silent' }));
  base = `http://127.0.0.1:${api.port}`;
  platformKey = (await createApiKeyService({ db: t.db }).create({ name: 'platform', scopes: ['platform:admin'] })).key;
  for (const name of ['a', 'b'] as const) {
    const app = await ok<{ id: string }>(call('POST', '/v1/applications', platformKey, { name: `app-${name}` }), 201);
    if (name === 'a') a.applications = [app.id, `app-${name}`];
    keys[name] = (await ok<{ key: string }>(call('POST', '/v1/api-keys', platformKey, { name: `${name} admin`, application: `app-${name}`, scopes: ['admin'] }), 201)).key;
  }
  const { data: aKeys } = await ok<{ data: { id: string }[] }>(call('GET', '/v1/api-keys', keys.a));
  a['api-keys'] = aKeys.map((k) => k.id);
  const template = await ok<{ id: string }>(call('POST', '/v1/templates', keys.a, { name: 'welcome', subject: 'Hi {{name}}', text: 'A' }), 201);
  const aOnly = await ok<{ id: string }>(call('POST', '/v1/templates', keys.a, { name: 'a-only', subject: 'Only A', text: 'A' }), 201);
  a.templates = [template.id, aOnly.id, 'a-only'];
  const endpoint = await ok<{ id: string }>(call('POST', '/v1/webhook-endpoints', keys.a, { url: 'https://a.example.com/hook' }), 201);
  a['webhook-endpoints'] = [endpoint.id];
  const scheduled = new Date(Date.now() + 24 * 3600_000).toISOString();
  const sent = await ok<{ id: string }>(
    call('POST', '/v1/emails', keys.a, { from: 'a@example.com', to: 'x@example.com', template: { name: 'welcome', data: { name: 'X' } }, scheduledAt: scheduled }, { 'Idempotency-Key': 'same-key' }),
    202,
  );
  a.emails = [sent.id];
  // A's schema for order.paid accepts only A's payload: B publishing order.paid must not be held to it.
  await ok(call('POST', '/v1/event-types', keys.a, { name: 'order.paid', schema: { type: 'object', required: ['by'], properties: { by: { const: 'A' } } } }), 201);
  await ok(call('POST', '/v1/event-types', keys.a, { name: 'a-only.type', description: 'Only A', deprecated: true }), 201);
  a['event-types'] = ['a-only.type'];
  const event = await ok<{ id: string; deliveries: number }>(call('POST', '/v1/events', keys.a, { type: 'order.paid', payload: { by: 'A' } }), 202);
  a.events = [event.id];
  const { deliveries } = await ok<{ deliveries: { id: string }[] }>(call('GET', `/v1/events/${event.id}`, keys.a));
  a['webhook-deliveries'] = deliveries.map((d) => d.id);
  await ok(call('POST', '/v1/suppressions', keys.a, { address: 'a-blocked@example.com' }), 201);
  a.suppressions = ['a-blocked@example.com'];
  expect(a['webhook-deliveries']).toHaveLength(1);
});
afterAll(async () => {
  await api?.lifecycle.shutdown('test end');
  await t?.cleanup();
});

interface Operation {
  operationId: string;
  method: string;
  path: string;
}

async function operations(): Promise<Operation[]> {
  const doc = await ok<{ paths: Record<string, Record<string, { operationId?: string }>> }>(fetch(`${base}/openapi.json`));
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, op]) => ({ operationId: op.operationId ?? `${method} ${path}`, method: method.toUpperCase(), path })),
  );
}

/** The concrete paths to call: every path parameter filled with each of A's matching resources. */
function targets(op: Operation): { path: string; missing: string }[] {
  const params = op.path.match(/\{[^}]+\}/g) ?? [];
  if (params.length === 0) return [{ path: op.path, missing: op.path }];
  const kind = op.path.split('/')[2];
  const values = a[kind];
  if (!values) throw new Error(`${op.operationId}: no resource of A for /v1/${kind}; extend the matrix (the Resources of A)`);
  // Every parameter gets the value (a nested id of A's resource, e.g. a recovery of A's endpoint, is then A's id too).
  const fill = (v: string) => params.reduce((path, param) => path.replace(param, v), op.path);
  const missing = encodeURIComponent(MISSING_BY_KIND[kind] ?? MISSING_ID);
  return values.map((v) => ({ path: fill(encodeURIComponent(v)), missing: fill(missing) }));
}

describe('isolation matrix (from /openapi.json)', () => {
  it('names every operation of the document, and only those', async () => {
    const ids = (await operations()).map((o) => o.operationId).sort();
    expect(ids).toEqual(Object.keys(MATRIX).sort());
  });

  it.each([
    ['B\'s own key', () => ({ key: keys.b, headers: {} })],
    ['a platform key naming B', () => ({ key: platformKey, headers: { 'X-Application': 'app-b' } })],
  ])('%s gets 404 or its own data on every route, and A stays unchanged', async (_who, caller) => {
    const { key, headers } = caller();
    const platformCaller = key === platformKey;
    const before = await snapshotOfA();
    const aIds = Object.values(a).flat().filter((v) => !v.startsWith('app-'));
    const checked: string[] = [];
    for (const op of await operations()) {
      const row = MATRIX[op.operationId];
      if (!row) throw new Error(`operation ${op.operationId} is not in the matrix`);
      // A platform key manages every application by design: its platform routes are not B-scoped.
      if (row.outcome === 'platform-only' && platformCaller) continue;
      for (const { path, missing } of targets(op)) {
        const body = typeof row.body === 'function' ? row.body(platformCaller ? 'platform' : 'key') : row.body;
        const res = await call(op.method, path, key, body, headers);
        const text = await res.text();
        const what = `${op.operationId}: ${op.method} ${path} → ${res.status} ${text.slice(0, 200)}`;
        checked.push(what);
        switch (row.outcome) {
          case 'not-found': {
            expect({ what, status: res.status }).toEqual({ what, status: 404 });
            // Exactly what a random id gets, apart from the id itself: no existence leak.
            const random = (await (await call(op.method, missing, key, body, headers)).json()) as { status: number; type: string; title: string };
            const got = JSON.parse(text) as { status: number; type: string; title: string };
            expect({ what, status: got.status, type: got.type, title: got.title }).toEqual({ what, status: random.status, type: random.type, title: random.title });
            break;
          }
          case 'own-page':
            expect({ what, status: res.status }).toEqual({ what, status: 200 });
            for (const id of aIds) expect({ what, leaked: text.includes(id) ? id : null }).toEqual({ what, leaked: null });
            break;
          case 'creates-own':
            expect({ what, ok: res.status >= 200 && res.status < 300 }).toEqual({ what, ok: true });
            for (const id of aIds) expect({ what, leaked: text.includes(id) ? id : null }).toEqual({ what, leaked: null });
            break;
          case 'platform-only':
            expect({ what, status: res.status }).toEqual({ what, status: 403 });
            break;
        }
      }
    }
    // Every row was called, but the platform routes for a platform key (skipped above, by design).
    const called = new Set(checked.map((what) => what.slice(0, what.indexOf(':'))));
    const due = Object.entries(MATRIX).filter(([, row]) => !(row.outcome === 'platform-only' && platformCaller)).map(([id]) => id);
    expect([...called].sort()).toEqual(due.sort());
    expect(await snapshotOfA()).toEqual(before);
  });
});
