/**
 * The webhook API's contract: endpoint CRUD and secrets, and for every route the bad requests:
 * each answered 4xx application/problem+json naming the problem, with nothing stored. The api
 * runs with the outbound address rule ON (the production default), so literal private
 * addresses are refused at creation.
 */
import { REFUSED_AT_CREATION } from '../../app/webhooks/private-urls.fixture';
import { expectProblem, request } from '../support/http';
import { runCli } from '../support/processes';
import { startStack, type Stack } from '../support/stack';

jest.setTimeout(60_000);

let s: Stack;
let publisherKey: string;
let managerKey: string;

beforeAll(async () => {
  s = await startStack('wh_api', { worker: false, env: { RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000' } });
  const { createApiKeyService } = await import('../../app/auth/api-keys');
  const keys = createApiKeyService({ db: s.t.db });
  publisherKey = (await keys.create({ name: 'publisher', scopes: ['events:publish'] })).key;
  managerKey = (await keys.create({ name: 'manager', scopes: ['webhooks:manage'] })).key;
});
afterAll(async () => {
  await s?.stop();
});

async function counts() {
  const db = s.t.db;
  const [endpoints, events, deliveries, idempotency] = await Promise.all([
    db.webhookEndpoint.count(),
    db.event.count(),
    db.webhookDelivery.count(),
    db.idempotencyRecord.count(),
  ]);
  return { endpoints, events, deliveries, idempotency };
}

describe('endpoints', () => {
  it('create, read, list, update, delete; the secret only on creation and from /secret', async () => {
    const created = await s.json('POST', '/v1/webhook-endpoints', { url: 'https://hooks.example.com/in?x=1', eventTypes: ['order.paid'], description: 'orders' });
    expect(created).toMatchObject({
      id: expect.any(String),
      url: 'https://hooks.example.com/in?x=1',
      eventTypes: ['order.paid'],
      description: 'orders',
      enabled: true,
      disabledReason: null,
      failingSince: null,
      secret: expect.stringMatching(/^whsec_/),
    });
    const row = await s.t.db.webhookEndpoint.findUniqueOrThrow({ where: { id: created.id } });
    expect(row.secretEncrypted).not.toContain(created.secret.slice(6)); // stored encrypted
    const read = await s.json('GET', `/v1/webhook-endpoints/${created.id}`);
    expect(read).not.toHaveProperty('secret');
    expect(read).toEqual((({ secret: _, ...rest }) => rest)(created));
    expect(created).toMatchObject({ signatureScheme: 'hmac-sha256', publicKey: null });
    expect(await s.json('GET', `/v1/webhook-endpoints/${created.id}/secret`)).toEqual({ signatureScheme: 'hmac-sha256', secret: created.secret, previousSecretExpiresAt: null });

    const updated = await s.json('PATCH', `/v1/webhook-endpoints/${created.id}`, { eventTypes: [], description: null, url: 'https://hooks.example.com/v2' });
    expect(updated).toMatchObject({ eventTypes: [], description: null, url: 'https://hooks.example.com/v2' });
    const disabled = await s.json('PATCH', `/v1/webhook-endpoints/${created.id}`, { enabled: false });
    expect(disabled).toMatchObject({ enabled: false, disabledReason: 'disabled through the API', disabledAt: expect.any(String) });

    const second = await s.json('POST', '/v1/webhook-endpoints', { url: 'https://b.example.com/', enabled: false, secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` });
    expect(second.secret).toBe(`whsec_${Buffer.alloc(32, 7).toString('base64')}`);
    const page1 = await s.json('GET', '/v1/webhook-endpoints?limit=1');
    expect(page1.data.map((e: { id: string }) => e.id)).toEqual([second.id]);
    const page2 = await s.json('GET', `/v1/webhook-endpoints?limit=1&cursor=${page1.nextCursor}`);
    expect(page2.data.map((e: { id: string }) => e.id)).toEqual([created.id]);
    expect(page2.nextCursor).toBeNull();

    expect((await s.call('DELETE', `/v1/webhook-endpoints/${created.id}`)).status).toBe(204);
    expect((await s.call('DELETE', `/v1/webhook-endpoints/${second.id}`)).status).toBe(204);
    await expectProblem(await s.call('GET', `/v1/webhook-endpoints/${created.id}`), 404, /no webhook endpoint/);
  });

  it('appear in the OpenAPI document, with the signing scheme and public key', async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const doc = (await (await fetch(`${s.base}/openapi.json`)).json()) as { paths: Record<string, any>; components: { schemas: Record<string, any> } };
    for (const path of ['/v1/webhook-endpoints', '/v1/webhook-endpoints/{id}', '/v1/webhook-endpoints/{id}/secret', '/v1/webhook-endpoints/{id}/rotate-secret', '/v1/events', '/v1/events/{id}', '/v1/webhook-deliveries/{id}/retry']) {
      expect(doc.paths).toHaveProperty([path]);
    }
    const schemas = doc.components.schemas;
    expect(schemas.WebhookSignatureScheme).toMatchObject({ type: 'string', enum: ['hmac-sha256', 'ed25519'] });
    expect(JSON.stringify(schemas.WebhookEndpointCreate.properties.signatureScheme)).toMatch(/WebhookSignatureScheme/);
    expect(schemas.WebhookEndpoint.required).toEqual(expect.arrayContaining(['signatureScheme', 'publicKey']));
    expect(schemas.WebhookEndpointCreated.required).not.toContain('secret');
    // GET /secret and a rotation answer either the shared secret or the public key, by scheme.
    const variants = schemas.WebhookEndpointSecret.oneOf ?? schemas.WebhookEndpointSecret.anyOf;
    expect(variants.map((v: { required: string[] }) => [...v.required].sort())).toEqual([
      ['previousSecretExpiresAt', 'secret', 'signatureScheme'],
      ['previousSecretExpiresAt', 'publicKey', 'signatureScheme'],
    ]);
    const rotate = doc.paths['/v1/webhook-endpoints/{id}/rotate-secret'].post;
    expect(rotate.requestBody).toMatchObject({ required: false });
    expect(JSON.stringify(rotate.requestBody)).toMatch(/WebhookEndpointSecretRotate/);
    expect(schemas.WebhookEndpointSecretRotate.properties).toHaveProperty('signatureScheme');
  });
});

describe('bad requests: 4xx problem+json, nothing stored', () => {
  let existing: { id: string };
  let before: Awaited<ReturnType<typeof counts>>;
  beforeAll(async () => {
    existing = await s.json('POST', '/v1/webhook-endpoints', { url: 'https://keep.example.com/', eventTypes: ['keep.me'] });
    before = await counts();
  });
  afterEach(async () => {
    expect(await counts()).toEqual(before);
    // The existing endpoint is untouched by the refused changes.
    expect(await s.json('GET', `/v1/webhook-endpoints/${existing.id}`)).toMatchObject({ url: 'https://keep.example.com/', eventTypes: ['keep.me'], enabled: true });
  });

  const BAD_CREATE: [string, unknown, RegExp][] = [
    ['no url', { eventTypes: [] }, /\/url/],
    ['a URL that is not one', { url: 'not a url' }, /absolute http/],
    ['ftp://', { url: 'ftp://example.com/' }, /scheme must be http or https/],
    ['credentials', { url: 'https://user:pw@example.com/' }, /credentials/],
    ['loopback literal', { url: 'http://127.0.0.1:8080/' }, /loopback address/],
    ['0x7f.1', { url: 'http://0x7f.1/' }, /host 127\.0\.0\.1 is a loopback address/],
    ['metadata', { url: 'http://169.254.169.254/latest/meta-data' }, /cloud metadata/],
    ['ULA', { url: 'http://[fd00::1]/' }, /unique-local/],
    ['localhost', { url: 'http://localhost:3000/' }, /loopback name/],
    ['eventTypes not an array', { url: 'https://a.example.com/', eventTypes: 'order.paid' }, /\/eventTypes/],
    ['bad event type', { url: 'https://a.example.com/', eventTypes: ['has space'] }, /\/eventTypes\/0/],
    ['repeated event type', { url: 'https://a.example.com/', eventTypes: ['a', 'a'] }, /must not repeat/],
    ['description too long', { url: 'https://a.example.com/', description: 'x'.repeat(501) }, /\/description/],
    ['unknown field', { url: 'https://a.example.com/', colour: 'red' }, /colour/],
    ['bad secret', { url: 'https://a.example.com/', secret: 'hunter2' }, /must start with "whsec_"/],
    ['unknown signing scheme', { url: 'https://a.example.com/', signatureScheme: 'rsa' }, /\/signatureScheme/],
    ['a secret with ed25519', { url: 'https://a.example.com/', signatureScheme: 'ed25519', secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` }, /only an hmac-sha256 endpoint takes a secret/],
    ['enabled not boolean', { url: 'https://a.example.com/', enabled: 'yes' }, /\/enabled/],
    ['array body', [{ url: 'https://a.example.com/' }], /invalid request body/],
  ];
  it.each(BAD_CREATE)('POST /v1/webhook-endpoints with %s → 422', async (_, body, detail) => {
    const problem = await expectProblem(await s.call('POST', '/v1/webhook-endpoints', body), 422);
    expect(`${problem.detail} ${JSON.stringify(problem.errors ?? [])}`).toMatch(detail);
  });

  it(`POST /v1/webhook-endpoints refuses all ${REFUSED_AT_CREATION.length} literal private and loopback URLs → 422`, async () => {
    expect(REFUSED_AT_CREATION.length).toBeGreaterThanOrEqual(25);
    for (const url of REFUSED_AT_CREATION) {
      const problem = await expectProblem(await s.call('POST', '/v1/webhook-endpoints', { url }), 422);
      expect({ url, errors: problem.errors }).toEqual({ url, errors: [{ path: '/url', message: expect.stringMatching(/WEBHOOK_ALLOW_PRIVATE_NETWORKS/) }] });
    }
  });

  it('POST /v1/webhook-endpoints: malformed JSON 400, not JSON 415, no key 401, wrong scope 403', async () => {
    await expectProblem(await s.call('POST', '/v1/webhook-endpoints', '{"url": '), 400, /JSON/);
    await expectProblem(
      await s.call('POST', '/v1/webhook-endpoints', 'url=x', { 'content-type': 'text/plain' }),
      415,
    );
    await expectProblem(await request(s.base, undefined, 'POST', '/v1/webhook-endpoints', {}), 401);
    await expectProblem(
      await request(s.base, publisherKey, 'POST', '/v1/webhook-endpoints', { url: 'https://a.example.com/' }),
      403,
      /webhooks:manage/,
    );
  });

  it('GET /v1/webhook-endpoints with a bad limit or cursor → 422', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'cursor=nope', 'sort=asc']) {
      await expectProblem(await s.call('GET', `/v1/webhook-endpoints?${q}`), 422);
    }
  });

  it('/v1/webhook-endpoints/:id routes with a malformed or unknown id → 404', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const id of ['not-a-uuid', unknown]) {
      await expectProblem(await s.call('GET', `/v1/webhook-endpoints/${id}`), 404, /no webhook endpoint/);
      await expectProblem(await s.call('PATCH', `/v1/webhook-endpoints/${id}`, { enabled: true }), 404, /no webhook endpoint/);
      await expectProblem(await s.call('DELETE', `/v1/webhook-endpoints/${id}`), 404, /no webhook endpoint/);
      await expectProblem(await s.call('GET', `/v1/webhook-endpoints/${id}/secret`), 404, /no webhook endpoint/);
      await expectProblem(await s.call('POST', `/v1/webhook-endpoints/${id}/rotate-secret`), 404, /no webhook endpoint/);
      await expectProblem(await s.call('POST', `/v1/webhook-endpoints/${id}/rotate-secret`, { signatureScheme: 'ed25519' }), 404, /no webhook endpoint/);
    }
  });

  it.each([
    ['an empty change', {}, /at least one field/],
    ['a private URL', { url: 'http://10.0.0.1/' }, /private \(RFC 1918\)/],
    ['a bad event type list', { eventTypes: [1] }, /\/eventTypes\/0/],
    ['a secret (rotate instead)', { secret: 'whsec_abc' }, /secret/],
    ['a signing scheme (rotate instead)', { signatureScheme: 'ed25519' }, /signatureScheme/],
    ['enabled as a string', { enabled: 'true' }, /\/enabled/],
  ])('PATCH /v1/webhook-endpoints/:id with %s → 422', async (_, body, detail) => {
    const problem = await expectProblem(await s.call('PATCH', `/v1/webhook-endpoints/${existing.id}`, body), 422);
    expect(`${problem.detail} ${JSON.stringify(problem.errors ?? [])}`).toMatch(detail);
  });

  it('endpoint routes refuse a key without webhooks:manage → 403', async () => {
    await expectProblem(await request(s.base, publisherKey, 'GET', '/v1/webhook-endpoints'), 403);
    await expectProblem(await request(s.base, publisherKey, 'GET', `/v1/webhook-endpoints/${existing.id}/secret`), 403);
    await expectProblem(await request(s.base, publisherKey, 'POST', `/v1/webhook-endpoints/${existing.id}/rotate-secret`), 403);
  });

  const BAD_EVENTS: [string, unknown, number, RegExp][] = [
    ['no type', { payload: {} }, 422, /\/type/],
    ['a type with spaces', { type: 'order paid', payload: {} }, 422, /\/type/],
    ['a reserved email.* type', { type: 'email.sent', payload: {} }, 422, /published by the service itself/],
    ['a type too long', { type: 'a'.repeat(101), payload: {} }, 422, /\/type/],
    ['no payload', { type: 'order.paid' }, 422, /\/payload/],
    ['an array payload', { type: 'order.paid', payload: [1, 2] }, 422, /\/payload/],
    ['a string payload', { type: 'order.paid', payload: 'hi' }, 422, /\/payload/],
    ['a payload over 256 KiB', { type: 'order.paid', payload: { blob: 'x'.repeat(300 * 1024) } }, 422, /at most 262144 bytes/],
    ['an unknown field', { type: 'order.paid', payload: {}, priority: 1 }, 422, /priority/],
  ];
  it.each(BAD_EVENTS)('POST /v1/events with %s → 4xx', async (_, body, status, detail) => {
    const problem = await expectProblem(await s.call('POST', '/v1/events', body), status);
    expect(`${problem.detail} ${JSON.stringify(problem.errors ?? [])}`).toMatch(detail);
  });

  it('POST /v1/events: bad Idempotency-Key 422, malformed JSON 400, no key 401, wrong scope 403', async () => {
    await expectProblem(await s.call('POST', '/v1/events', { type: 'keep.me', payload: {} }, { 'idempotency-key': 'x'.repeat(256) }), 422, /Idempotency-Key/);
    await expectProblem(await s.call('POST', '/v1/events', '{"type":'), 400, /JSON/);
    await expectProblem(await request(s.base, undefined, 'POST', '/v1/events', {}), 401);
    await expectProblem(
      await request(s.base, managerKey, 'POST', '/v1/events', { type: 'keep.me', payload: {} }),
      403,
      /events:publish/,
    );
  });

  it('GET /v1/events/:id and POST /v1/webhook-deliveries/:id/retry with a malformed or unknown id → 404', async () => {
    for (const id of ['123', '00000000-0000-4000-8000-000000000000']) {
      await expectProblem(await s.call('GET', `/v1/events/${id}`), 404, /no event/);
      await expectProblem(await s.call('POST', `/v1/webhook-deliveries/${id}/retry`), 404, /no webhook delivery/);
    }
    await expectProblem(await request(s.base, publisherKey, 'POST', '/v1/webhook-deliveries/00000000-0000-4000-8000-000000000000/retry'), 403);
  });

  it('unsupported methods → 405', async () => {
    await expectProblem(await s.call('PUT', `/v1/webhook-endpoints/${existing.id}`, { url: 'https://x.example.com/' }), 405);
    await expectProblem(await s.call('DELETE', '/v1/events'), 405);
  });
});

describe('ENCRYPTION_KEY', () => {
  it.each(['api', 'worker'])('the %s refuses to start without it, saying why (exit 2)', async (role) => {
    const { ENCRYPTION_KEY: _, ...env } = s.t.env;
    const r = await runCli([role], { ...env, PORT: '0', WORKER_HEALTH_PORT: '0' });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/ENCRYPTION_KEY: required, webhook endpoint secrets are stored encrypted/);
  });
});
