/**
 * The event-type catalog: registering types with payload schemas, the built-in types listed with
 * theirs, the check on POST /v1/events (valid passes, invalid 422 naming the path, deprecated
 * accepted with a warning, unknown allowed), bad schemas refused with nothing stored, and
 * per-application isolation (another application's type is a 404 and its schema does not apply).
 */
import { createApiKeyService } from '../../app/auth/api-keys';
import { expectProblem, request } from '../support/http';
import { startStack, type Stack } from '../support/stack';

jest.setTimeout(60_000);

let s: Stack;
let otherKey: string;

const orderSchema = {
  type: 'object',
  required: ['orderId', 'amount'],
  properties: { orderId: { type: 'string' }, amount: { type: 'integer', minimum: 0 }, lines: { type: 'array', items: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } } } },
};

beforeAll(async () => {
  s = await startStack('wh_event_types', { worker: false });
  const platformKey = (await createApiKeyService({ db: s.t.db }).create({ name: 'platform', scopes: ['platform:admin'] })).key;
  const asPlatform = (method: string, path: string, body: unknown) => request(s.base, platformKey, method, path, body);
  expect((await asPlatform('POST', '/v1/applications', { name: 'other-app' })).status).toBe(201);
  const created = await asPlatform('POST', '/v1/api-keys', { name: 'other admin', application: 'other-app', scopes: ['admin'] });
  expect(created.status).toBe(201);
  otherKey = created.body.key;
});
afterAll(async () => {
  await s?.stop();
});

const asOther = (method: string, path: string, body?: unknown) => request(s.base, otherKey, method, path, body);

describe('catalog', () => {
  it('creates, reads, lists (after the built-in types) and updates a type', async () => {
    const res = await s.call('POST', '/v1/event-types', { name: 'order.paid', description: 'An order was paid', schema: orderSchema });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/v1/event-types/order.paid');
    expect(res.body).toMatchObject({ name: 'order.paid', description: 'An order was paid', schema: orderSchema, deprecated: false, builtIn: false });
    expect(await s.json('GET', '/v1/event-types/order.paid')).toEqual(res.body);

    const { data } = await s.json('GET', '/v1/event-types');
    const names = data.map((t: { name: string }) => t.name);
    expect(names).toEqual(expect.arrayContaining(['email.sent', 'email.failed', 'email.cancelled', 'email.bounced', 'email.suppressed', 'webhook.endpoint.disabled', 'webhook.delivery.exhausted', 'order.paid']));
    const sent = data.find((t: { name: string }) => t.name === 'email.sent');
    expect(sent).toMatchObject({ builtIn: true, schema: { type: 'object', required: expect.arrayContaining(['emailId', 'status']) } });
    expect(data.find((t: { name: string }) => t.name === 'webhook.endpoint.disabled').schema.required).toContain('reason');
    expect(names.indexOf('email.sent')).toBeLessThan(names.indexOf('order.paid'));

    const patched = await s.json('PATCH', '/v1/event-types/order.paid', { description: null });
    expect(patched).toMatchObject({ name: 'order.paid', description: null, schema: orderSchema });
  });

  it('refuses a name taken, a built-in name, and a bad schema (422, nothing stored)', async () => {
    await s.json('POST', '/v1/event-types', { name: 'taken.once' });
    expectProblem(await s.call('POST', '/v1/event-types', { name: 'taken.once' }), 409, /already exists/);
    expectProblem(await s.call('POST', '/v1/event-types', { name: 'email.sent' }), 409, /built-in/);
    expectProblem(await s.call('PATCH', '/v1/event-types/email.sent', { deprecated: true }), 409, /built-in/);

    const before = await s.t.db.eventType.count();
    const bad = expectProblem(await s.call('POST', '/v1/event-types', { name: 'bad.schema', schema: { type: 'objekt' } }), 422, /not a valid JSON Schema/);
    expect(bad.errors?.[0].path).toBe('/schema');
    expectProblem(await s.call('POST', '/v1/event-types', { name: 'bad.schema', schema: { properties: { a: { minimum: 'zero' } } } }), 422, /not a valid JSON Schema/);
    expectProblem(await s.call('POST', '/v1/event-types', { name: 'bad name!' }), 422);
    expect(await s.t.db.eventType.count()).toBe(before);
    expectProblem(await s.call('GET', '/v1/event-types/bad.schema'), 404);

    const kept = await s.json('POST', '/v1/event-types', { name: 'kept.schema', schema: { type: 'object' } });
    expectProblem(await s.call('PATCH', '/v1/event-types/kept.schema', { schema: { type: 12 } }), 422, /not a valid JSON Schema/);
    expect(await s.json('GET', '/v1/event-types/kept.schema')).toEqual(kept);
    expectProblem(await s.call('PATCH', '/v1/event-types/no.such.type', { deprecated: true }), 404);
  });
});

describe('publishing against the catalog', () => {
  beforeAll(async () => {
    await s.json('POST', '/v1/event-types', { name: 'invoice.issued', schema: orderSchema });
  });

  it('a valid payload passes; an invalid one is a 422 naming the JSON path, with no event stored', async () => {
    const ok = await s.call('POST', '/v1/events', { type: 'invoice.issued', payload: { orderId: 'o-1', amount: 5, lines: [{ sku: 'a' }] } });
    expect(ok.status).toBe(202);
    expect(ok.headers.get('deprecation')).toBeNull();

    const before = await s.t.db.event.count();
    const wrongType = expectProblem(await s.call('POST', '/v1/events', { type: 'invoice.issued', payload: { orderId: 'o-2', amount: 'five' } }), 422, /\/payload\/amount/);
    expect(wrongType.errors?.map((e) => e.path)).toEqual(['/payload/amount']);
    const nested = expectProblem(await s.call('POST', '/v1/events', { type: 'invoice.issued', payload: { orderId: 'o-3', amount: 1, lines: [{ sku: 'a' }, {}] } }), 422);
    expect(nested.errors?.map((e) => e.path)).toEqual(['/payload/lines/1']);
    expect(nested.detail).toMatch(/sku/);
    const missing = expectProblem(await s.call('POST', '/v1/events', { type: 'invoice.issued', payload: { amount: 1 } }), 422);
    expect(missing.errors?.[0]).toEqual({ path: '/payload', message: expect.stringMatching(/orderId/) });
    expect(await s.t.db.event.count()).toBe(before);
  });

  it('a changed schema applies to the next publish (the cached validator is per version)', async () => {
    await s.json('POST', '/v1/event-types', { name: 'shipment.sent', schema: { type: 'object', required: ['a'] } });
    expect((await s.call('POST', '/v1/events', { type: 'shipment.sent', payload: { a: 1 } })).status).toBe(202);
    await s.json('PATCH', '/v1/event-types/shipment.sent', { schema: { type: 'object', required: ['b'] } });
    expectProblem(await s.call('POST', '/v1/events', { type: 'shipment.sent', payload: { a: 1 } }), 422, /b/);
    expect((await s.call('POST', '/v1/events', { type: 'shipment.sent', payload: { b: 1 } })).status).toBe(202);
    await s.json('PATCH', '/v1/event-types/shipment.sent', { schema: null });
    expect((await s.call('POST', '/v1/events', { type: 'shipment.sent', payload: { c: 1 } })).status).toBe(202);
  });

  it('a deprecated type is still accepted, with Deprecation and Warning headers', async () => {
    await s.json('POST', '/v1/event-types', { name: 'order.legacy' });
    await s.json('PATCH', '/v1/event-types/order.legacy', { deprecated: true });
    const before = await s.t.db.event.count({ where: { type: 'order.legacy' } });
    const res = await s.call('POST', '/v1/events', { type: 'order.legacy', payload: { x: 1 } });
    expect(res.status).toBe(202);
    expect(res.headers.get('deprecation')).toBe('true');
    expect(res.headers.get('warning')).toMatch(/^299 - ".*order\.legacy is deprecated"$/);
    expect(await s.t.db.event.count({ where: { type: 'order.legacy' } })).toBe(before + 1);
  });

  it('a deprecated type with a schema: checked, then recorded with the headers; with an Idempotency-Key the same check and headers', async () => {
    await s.json('POST', '/v1/event-types', { name: 'order.old', schema: { type: 'object', required: ['id'] } });
    await s.json('PATCH', '/v1/event-types/order.old', { deprecated: true });
    const before = await s.t.db.event.count({ where: { type: 'order.old' } });
    expectProblem(await s.call('POST', '/v1/events', { type: 'order.old', payload: { x: 1 } }), 422, /id/);
    expectProblem(await s.call('POST', '/v1/events', { type: 'order.old', payload: { x: 1 } }, { 'Idempotency-Key': 'old-bad' }), 422, /id/);
    expect(await s.t.db.event.count({ where: { type: 'order.old' } })).toBe(before);
    for (const headers of [undefined, { 'Idempotency-Key': 'old-good' }]) {
      const res = await s.call('POST', '/v1/events', { type: 'order.old', payload: { id: 1 } }, headers);
      expect(res.status).toBe(202);
      expect(res.headers.get('deprecation')).toBe('true');
      expect(res.headers.get('warning')).toMatch(/order\.old is deprecated/);
    }
    expect(await s.t.db.event.count({ where: { type: 'order.old' } })).toBe(before + 2);
  });

  it('an unregistered type is published as it is', async () => {
    const res = await s.call('POST', '/v1/events', { type: 'never.registered', payload: { anything: ['goes'] } });
    expect(res.status).toBe(202);
    expect(res.headers.get('deprecation')).toBeNull();
  });
});

describe('isolation', () => {
  it("another application's type is a 404, absent from its list, and its schema does not apply there", async () => {
    await s.json('POST', '/v1/event-types', { name: 'private.type', schema: { type: 'object', required: ['mustHave'] }, deprecated: true });
    expectProblem(await asOther('GET', '/v1/event-types/private.type'), 404);
    expectProblem(await asOther('PATCH', '/v1/event-types/private.type', { deprecated: false }), 404);
    const { data } = (await asOther('GET', '/v1/event-types')).body;
    expect(data.map((t: { name: string }) => t.name)).not.toContain('private.type');
    expect(data.some((t: { name: string }) => t.name === 'email.sent')).toBe(true);

    const published = await asOther('POST', '/v1/events', { type: 'private.type', payload: { other: true } });
    expect(published.status).toBe(202);
    expect(published.headers.get('deprecation')).toBeNull();
    expectProblem(await s.call('POST', '/v1/events', { type: 'private.type', payload: { other: true } }), 422, /mustHave/);

    // The same name in the other application is its own type.
    expect((await asOther('POST', '/v1/event-types', { name: 'private.type' })).status).toBe(201);
    expect((await s.json('GET', '/v1/event-types/private.type')).deprecated).toBe(true);
    expect((await asOther('GET', '/v1/event-types/private.type')).body.deprecated).toBe(false);
  });
});
