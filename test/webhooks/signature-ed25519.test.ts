/**
 * Optional ed25519 signatures (Standard Webhooks `v1a`) per endpoint, end to end: the real api and
 * worker, PostgreSQL, Redis and HTTP receivers on loopback. `v1a` is verified as a receiver would,
 * with node:crypto and the public key alone (test/support/signatures.ts); `v1` with the
 * standardwebhooks package. Every API answer of this suite and every line the api and the worker
 * log (level trace) is kept: at the end none may hold a private key that the database holds.
 */
import { randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { createLogger } from '../../app/log';
import { createSecretBox, generateSigningSecret, publicKeyOf } from '../../app/webhooks/secrets';
import { eventually } from '../support/eventually';
import { expectProblem, type ApiResponse } from '../support/http';
import { receiverPool } from '../support/receiver';
import { signatureVersions, verifiesV1a } from '../support/signatures';
import { FAST_DELIVERY_ENV, startStack, type Stack } from '../support/stack';

jest.setTimeout(60_000);

const logLines: string[] = [];
const capturingLog = (role: string) => createLogger({ level: 'trace', name: role, destination: { write: (line: string) => void logLines.push(line) } });
const answers: string[] = [];
/** Private keys this suite made that the database does not keep (sent in a refused request, or replaced). */
const otherPrivateKeys: string[] = [];

let s: Stack;
const receivers = receiverPool();
const receiver = receivers.start;

beforeAll(async () => {
  s = await startStack('wh_ed25519', { env: FAST_DELIVERY_ENV, apiLog: capturingLog('api'), workerLog: capturingLog('worker') });
});
afterAll(async () => {
  await s?.stop();
  await receivers.closeAll();
});

/** Every call of this suite goes through here, so its answer is checked for keys at the end. */
async function call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
  const res = await s.call(method, path, body);
  answers.push(res.text);
  return res;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function json(method: string, path: string, body?: unknown): Promise<any> {
  const res = await call(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status}: ${res.text}`);
  return res.body;
}

const PUBLIC_KEY = /^whpk_[A-Za-z0-9+/]{43}=$/;
/** Endpoints that must receive nothing: a type no test publishes, and a loopback URL all the same. */
const NEVER_PUBLISHED = 'never.published';
const UNUSED_URL = 'http://127.0.0.1:9/unused';
const box = () => createSecretBox(s.t.config.encryptionKey!);

async function settled(eventId: string, status: 'delivered' | 'failed') {
  return eventually(
    async () => {
      const e = await json('GET', `/v1/events/${eventId}`);
      return e.deliveries.length === 1 && e.deliveries[0].status === status ? e.deliveries[0] : undefined;
    },
    `delivery of event ${eventId} to be ${status}`,
  );
}

describe('an ed25519 endpoint', () => {
  it('is created with a generated key pair, shows only the public key, and stores the private key encrypted', async () => {
    const created = await call('POST', '/v1/webhook-endpoints', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: 'ed25519' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ signatureScheme: 'ed25519', publicKey: expect.stringMatching(PUBLIC_KEY) });
    expect(created.body).not.toHaveProperty('secret');
    const { publicKey, id } = created.body;
    expect(await json('GET', `/v1/webhook-endpoints/${id}`)).toEqual(created.body);
    expect(await json('GET', `/v1/webhook-endpoints/${id}/secret`)).toEqual({ signatureScheme: 'ed25519', publicKey, previousSecretExpiresAt: null });
    expect((await json('GET', '/v1/webhook-endpoints')).data.find((e: { id: string }) => e.id === id)).toEqual(created.body);

    const row = await s.t.db.webhookEndpoint.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ signatureScheme: 'ed25519', publicKey });
    const privateKey = box().decrypt(row.secretEncrypted, id);
    expect(privateKey).toMatch(/^whsk_[A-Za-z0-9+/]{86}==$/);
    expect(row.secretEncrypted).not.toContain(privateKey.slice(5, 30));
    expect(publicKeyOf(privateKey)).toBe(publicKey);
    // The database holds the scheme and the public key together (CHECK constraint).
    await expect(s.t.db.webhookEndpoint.update({ where: { id }, data: { publicKey: null } })).rejects.toThrow(/webhook_endpoints_signatureScheme_check/);
    await expect(s.t.db.webhookEndpoint.update({ where: { id }, data: { signatureScheme: 'rsa' } })).rejects.toThrow(/webhook_endpoints_signatureScheme_check/);
    expect(await s.t.db.webhookEndpoint.findUniqueOrThrow({ where: { id } })).toEqual(row);
  });

  it('gets deliveries whose v1a signature verifies with the public key, and not for a changed body', async () => {
    const rx = await receiver();
    const ep = (await call('POST', '/v1/webhook-endpoints', { url: `${rx.url}/ed`, eventTypes: ['ed.signed'], signatureScheme: 'ed25519' })).body;
    const published = await json('POST', '/v1/events', { type: 'ed.signed', payload: { orderId: 'E-1', amount: 1999 } });
    const [req] = await rx.waitFor(1);
    expect(signatureVersions(req.headers)).toEqual(['v1a']);
    expect(req.headers['webhook-signature']).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
    expect(verifiesV1a(ep.publicKey, req.body, req.headers)).toBe(true);
    expect(JSON.parse(req.body)).toMatchObject({ id: published.id, type: 'ed.signed', data: { orderId: 'E-1', amount: 1999 } });
    const delivery = await settled(published.id, 'delivered');
    expect(req.headers['webhook-id']).toBe(delivery.id);

    expect(verifiesV1a(ep.publicKey, req.body.replace('E-1', 'E-2'), req.headers)).toBe(false);
    expect(verifiesV1a(ep.publicKey, req.body, { ...req.headers, 'webhook-timestamp': String(Number(req.headers['webhook-timestamp']) + 1) })).toBe(false);
    expect(verifiesV1a(publicKeyOf(generateSigningSecret('ed25519'))!, req.body, req.headers)).toBe(false);
    // An HMAC verifier finds no v1 signature to check.
    expect(() => new Webhook(generateSigningSecret('hmac-sha256')).verify(req.body, req.headers)).toThrow(WebhookVerificationError);
  });
});

describe('an HMAC endpoint (the default)', () => {
  it('is unchanged: a whsec_ secret, no public key, one v1 signature the standardwebhooks package verifies', async () => {
    const rx = await receiver();
    const ep = (await call('POST', '/v1/webhook-endpoints', { url: rx.url, eventTypes: ['hmac.signed'] })).body;
    expect(ep).toMatchObject({ signatureScheme: 'hmac-sha256', publicKey: null, secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/) });
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}/secret`)).toEqual({ signatureScheme: 'hmac-sha256', secret: ep.secret, previousSecretExpiresAt: null });
    expect(await s.t.db.webhookEndpoint.findUniqueOrThrow({ where: { id: ep.id } })).toMatchObject({ signatureScheme: 'hmac-sha256', publicKey: null });

    await json('POST', '/v1/events', { type: 'hmac.signed', payload: { n: 'one' } });
    const [req] = await rx.waitFor(1);
    expect(signatureVersions(req.headers)).toEqual(['v1']);
    expect(new Webhook(ep.secret).verify(req.body, req.headers)).toMatchObject({ data: { n: 'one' } });
    expect(() => new Webhook(ep.secret).verify(req.body.replace('one', 'two'), req.headers)).toThrow(WebhookVerificationError);
  });
});

describe('rotation', () => {
  it('of an ed25519 endpoint: a new key pair; for 24 h both keys sign (two v1a), each verifying with its public key', async () => {
    const rx = await receiver();
    const ep = (await call('POST', '/v1/webhook-endpoints', { url: rx.url, eventTypes: ['ed.rotated'], signatureScheme: 'ed25519' })).body;
    const rotated = await json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`);
    expect(rotated).toEqual({ signatureScheme: 'ed25519', publicKey: expect.stringMatching(PUBLIC_KEY), previousSecretExpiresAt: expect.any(String) });
    expect(rotated.publicKey).not.toBe(ep.publicKey);
    expect(Date.parse(rotated.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}/secret`)).toEqual(rotated);
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}`)).toMatchObject({ signatureScheme: 'ed25519', publicKey: rotated.publicKey });

    await json('POST', '/v1/events', { type: 'ed.rotated', payload: { n: 'one' } });
    const [req] = await rx.waitFor(1);
    expect(signatureVersions(req.headers)).toEqual(['v1a', 'v1a']);
    for (const publicKey of [rotated.publicKey, ep.publicKey]) {
      const [current, previous] = req.headers['webhook-signature'].split(' ');
      expect(verifiesV1a(publicKey, req.body, req.headers)).toBe(true);
      // Each key verifies exactly one of the two: the new key the first, the old key the second.
      const only = (entry: string) => verifiesV1a(publicKey, req.body, { ...req.headers, 'webhook-signature': entry });
      expect([only(current), only(previous)]).toEqual(publicKey === rotated.publicKey ? [true, false] : [false, true]);
      expect(verifiesV1a(publicKey, req.body.replace('one', 'two'), req.headers)).toBe(false);
    }
  });

  it('to another scheme: HMAC → ed25519 → HMAC, the previous secret signing in its own scheme until the overlap ends', async () => {
    const rx = await receiver();
    const ep = (await call('POST', '/v1/webhook-endpoints', { url: rx.url, eventTypes: ['switch.scheme'] })).body;

    const toEd = await json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`, { signatureScheme: 'ed25519' });
    expect(toEd).toEqual({ signatureScheme: 'ed25519', publicKey: expect.stringMatching(PUBLIC_KEY), previousSecretExpiresAt: expect.any(String) });
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}`)).toMatchObject({ signatureScheme: 'ed25519', publicKey: toEd.publicKey });
    await json('POST', '/v1/events', { type: 'switch.scheme', payload: { step: 1 } });
    const [first] = await rx.waitFor(1);
    expect(signatureVersions(first.headers)).toEqual(['v1a', 'v1']);
    expect(verifiesV1a(toEd.publicKey, first.body, first.headers)).toBe(true);
    expect(new Webhook(ep.secret).verify(first.body, first.headers)).toMatchObject({ data: { step: 1 } });

    const toHmac = await json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`, { signatureScheme: 'hmac-sha256' });
    expect(toHmac).toEqual({ signatureScheme: 'hmac-sha256', secret: expect.stringMatching(/^whsec_/), previousSecretExpiresAt: expect.any(String) });
    expect(toHmac.secret).not.toBe(ep.secret);
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}`)).toMatchObject({ signatureScheme: 'hmac-sha256', publicKey: null });
    await json('POST', '/v1/events', { type: 'switch.scheme', payload: { step: 2 } });
    const [, second] = await rx.waitFor(2);
    // Rotating again within the overlap drops the oldest (the first HMAC secret): the ed25519 key is the previous one now.
    expect(signatureVersions(second.headers)).toEqual(['v1', 'v1a']);
    expect(new Webhook(toHmac.secret).verify(second.body, second.headers)).toMatchObject({ data: { step: 2 } });
    expect(verifiesV1a(toEd.publicKey, second.body, second.headers)).toBe(true);
    expect(() => new Webhook(ep.secret).verify(second.body, second.headers)).toThrow(WebhookVerificationError);

    await s.t.db.webhookEndpoint.update({ where: { id: ep.id }, data: { previousSecretExpiresAt: new Date(Date.now() - 1000) } });
    await json('POST', '/v1/events', { type: 'switch.scheme', payload: { step: 3 } });
    const [, , third] = await rx.waitFor(3);
    expect(signatureVersions(third.headers)).toEqual(['v1']);
    expect(verifiesV1a(toEd.publicKey, third.body, third.headers)).toBe(false);
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}/secret`)).toEqual({ signatureScheme: 'hmac-sha256', secret: toHmac.secret, previousSecretExpiresAt: null });
  });
});

describe('bad input: 422 problem+json, nothing stored or changed', () => {
  let existing: { id: string };
  let before: { count: number; row: unknown };
  const snapshot = async () => ({ count: await s.t.db.webhookEndpoint.count(), row: await s.t.db.webhookEndpoint.findUniqueOrThrow({ where: { id: existing.id } }) });
  beforeAll(async () => {
    existing = (await call('POST', '/v1/webhook-endpoints', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: 'ed25519' })).body;
    before = await snapshot();
  });
  afterEach(async () => {
    expect(await snapshot()).toEqual(before);
  });

  const broughtAlong = generateSigningSecret('ed25519');
  otherPrivateKeys.push(broughtAlong);
  it.each([
    ['an unknown scheme', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: 'rsa-sha256' }, '/signatureScheme', /hmac-sha256.*ed25519/],
    ['a scheme in capitals', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: 'ED25519' }, '/signatureScheme', /ed25519/],
    ['a null scheme', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: null }, '/signatureScheme', /./],
    ['the scheme as an object', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: { scheme: 'ed25519' } }, '/signatureScheme', /./],
    ['a secret with ed25519', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: 'ed25519', secret: `whsec_${randomBytes(32).toString('base64')}` }, '/secret', /only an hmac-sha256 endpoint takes a secret/],
    ['an ed25519 secret key brought along', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], secret: broughtAlong }, '/secret', /generated by the service/],
  ])('POST /v1/webhook-endpoints with %s → 422', async (_, body, path, message) => {
    const problem = expectProblem(await call('POST', '/v1/webhook-endpoints', body), 422, { path });
    expect(problem.errors!.find((e) => e.path === path)!.message).toMatch(message);
  });

  it.each([
    ['an unknown scheme', { signatureScheme: 'hmac-sha512' }, '/signatureScheme'],
    ['an unknown field', { key: 'whsec_abc' }, ''],
    ['an array', [{ signatureScheme: 'ed25519' }], ''],
  ])('POST /v1/webhook-endpoints/:id/rotate-secret with %s → 422, the key unchanged', async (_, body, path) => {
    expectProblem(await call('POST', `/v1/webhook-endpoints/${existing.id}/rotate-secret`, body), 422, path ? { path } : {});
  });

  it('PATCH cannot change the scheme (a rotation does, and answers the new key) → 422', async () => {
    const problem = expectProblem(await call('PATCH', `/v1/webhook-endpoints/${existing.id}`, { signatureScheme: 'hmac-sha256' }), 422);
    expect(`${problem.detail} ${JSON.stringify(problem.errors)}`).toMatch(/signatureScheme/);
  });
});

describe('a stored ed25519 key that cannot be used', () => {
  it('(its public half is not its seed\'s) fails the delivery at once, saying what to do, and sends nothing', async () => {
    const rx = await receiver();
    const ep = (await call('POST', '/v1/webhook-endpoints', { url: rx.url, eventTypes: ['ed.broken'], signatureScheme: 'ed25519' })).body;
    const [a, b] = [generateSigningSecret('ed25519'), generateSigningSecret('ed25519')];
    const mixed = `whsk_${Buffer.concat([Buffer.from(a.slice(5), 'base64').subarray(0, 32), Buffer.from(b.slice(5), 'base64').subarray(32)]).toString('base64')}`;
    otherPrivateKeys.push(mixed);
    await s.t.db.webhookEndpoint.update({ where: { id: ep.id }, data: { secretEncrypted: box().encrypt(mixed, ep.id) } });
    const published = await json('POST', '/v1/events', { type: 'ed.broken', payload: {} });
    const d = await settled(published.id, 'failed');
    expect(d.attemptCount).toBe(0);
    expect(d.lastError).toBe("endpoint secret: the ed25519 public key does not match its seed; rotate the endpoint's secret, then retry");
    expect(rx.count()).toBe(0);
    expect(logLines.some((l) => l.includes('cannot decrypt a webhook endpoint secret') && l.includes(ep.id))).toBe(true);

    // Rotating repairs it: the broken key is not kept for the overlap (it could not sign).
    const rotated = await json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`);
    expect(rotated).toEqual({ signatureScheme: 'ed25519', publicKey: expect.stringMatching(PUBLIC_KEY), previousSecretExpiresAt: null });
    expect(await s.t.db.webhookEndpoint.findUniqueOrThrow({ where: { id: ep.id } })).toMatchObject({ previousSecretEncrypted: null, previousSecretExpiresAt: null });
    await json('POST', `/v1/webhook-deliveries/${d.id}/retry`);
    const [req] = await rx.waitFor(1);
    expect(signatureVersions(req.headers)).toEqual(['v1a']);
    expect(verifiesV1a(rotated.publicKey, req.body, req.headers)).toBe(true);
    await settled(published.id, 'delivered');
  });
});

describe('a stored secret that cannot be read (ENCRYPTION_KEY changed, a damaged ciphertext)', () => {
  it('GET /secret of an ed25519 endpoint still answers its public key, which needs no private key', async () => {
    const ep = (await call('POST', '/v1/webhook-endpoints', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED], signatureScheme: 'ed25519' })).body;
    await s.t.db.webhookEndpoint.update({ where: { id: ep.id }, data: { secretEncrypted: 'v1:not-a-ciphertext' } });
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}/secret`)).toEqual({ signatureScheme: 'ed25519', publicKey: ep.publicKey, previousSecretExpiresAt: null });
    expect((await call('DELETE', `/v1/webhook-endpoints/${ep.id}`)).status).toBe(204); // its key is gone; the suite's key audit reads the rest
  });

  it('GET /secret of an HMAC endpoint is a 409 problem that says to rotate, and rotating repairs it', async () => {
    const ep = (await call('POST', '/v1/webhook-endpoints', { url: UNUSED_URL, eventTypes: [NEVER_PUBLISHED] })).body;
    await s.t.db.webhookEndpoint.update({ where: { id: ep.id }, data: { secretEncrypted: 'v1:not-a-ciphertext' } });
    expectProblem(await call('GET', `/v1/webhook-endpoints/${ep.id}/secret`), 409, /signing secret of webhook endpoint .* cannot be read .*rotate it/);
    const rotated = await json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`);
    expect(rotated).toEqual({ signatureScheme: 'hmac-sha256', secret: expect.stringMatching(/^whsec_/), previousSecretExpiresAt: null });
    expect(await json('GET', `/v1/webhook-endpoints/${ep.id}/secret`)).toEqual(rotated);
  });
});

describe('private keys', () => {
  it('appear in no API answer and no log line of this suite', async () => {
    const rows = await s.t.db.webhookEndpoint.findMany();
    const privateKeys = rows
      .flatMap((r) => [r.secretEncrypted, r.previousSecretEncrypted].filter((x): x is string => x !== null).map((sealed) => box().decrypt(sealed, r.id)))
      .filter((secret) => secret.startsWith('whsk_'));
    expect(privateKeys).toHaveLength(7);
    // The key as stored, and its seed however it might be written (base64, base64url, hex).
    const needles = [...privateKeys, ...otherPrivateKeys].flatMap((k) => {
      const seed = Buffer.from(k.slice(5), 'base64').subarray(0, 32);
      return [k.slice(5, 45), seed.toString('base64').slice(0, 40), seed.toString('base64url').slice(0, 40), seed.toString('hex')];
    });
    // The evidence is there to search: answers of every kind, lines of both roles.
    expect(answers.length).toBeGreaterThan(30);
    expect(logLines.some((l) => l.includes('"role":"api"'))).toBe(true);
    expect(logLines.some((l) => l.includes('"role":"worker"'))).toBe(true);
    const leaks = needles.filter((n) => answers.some((a) => a.includes(n)) || logLines.some((l) => l.includes(n)));
    expect(leaks).toEqual([]);
  });
});
