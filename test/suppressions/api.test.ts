/**
 * /v1/suppressions against a real api (PostgreSQL, Redis): add, list (filter, search, cursor),
 * remove; scope; bad input is a 422 problem+json with nothing stored; the list outlives the
 * process. And the worker's side: a partly suppressed email goes to the rest, and the attempt
 * names who was left out; DKIM signing of what the worker sends.
 */
import { dkimVerify } from 'mailauth/lib/dkim/verify';
import { startApi } from '../../app/api';
import { createApiKeyService } from '../../app/auth/api-keys';
import { loadConfig } from '../../app/config';
import { dkimDnsRecord, generateDkimKey, parseDkimKey, type DkimSettings } from '../../app/deliverability/dkim';
import { createLogger } from '../../app/log';
import { eventually, startDeliverabilityStack, type DeliverabilityStack } from '../inbound/stack';

const DKIM_KEY = generateDkimKey('rsa');
let s: DeliverabilityStack;

beforeAll(async () => {
  s = await startDeliverabilityStack('suppressions_api', { env: { DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 'ease1', DKIM_PRIVATE_KEY: DKIM_KEY } });
});
afterAll(async () => {
  await s?.stop();
});

const count = () => s.t.db.suppression.count();

describe('the suppression list API', () => {
  test('add (manual, normalised), list, search, filter, remove', async () => {
    const added = await s.call('POST', '/v1/suppressions', { address: '  Manual.User@Example.COM ', detail: 'asked us to stop' });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ address: 'Manual.User@example.com', reason: 'manual', emailId: null, detail: 'asked us to stop', createdAt: expect.any(String) });
    // Again, in another spelling: the existing entry, unchanged.
    const again = await s.call('POST', '/v1/suppressions', { address: 'Manual.User@EXAMPLE.com' });
    expect(again.status).toBe(200);
    expect(again.body.detail).toBe('asked us to stop');
    expect((await s.call('POST', '/v1/suppressions', { address: 'other_one@example.com' })).status).toBe(201);
    expect((await s.call('POST', '/v1/suppressions', { address: 'otherXone@example.com' })).status).toBe(201);

    expect((await s.call('GET', '/v1/suppressions?search=manual.user')).body.data.map((x: { address: string }) => x.address)).toEqual(['Manual.User@example.com']);
    // "_" is a character here, not a LIKE wildcard.
    expect((await s.call('GET', '/v1/suppressions?search=other_one')).body.data.map((x: { address: string }) => x.address)).toEqual(['other_one@example.com']);
    expect((await s.call('GET', '/v1/suppressions?reason=complaint')).body.data).toEqual([]);

    const page1 = await s.call('GET', '/v1/suppressions?reason=manual&limit=2');
    expect(page1.body.data).toHaveLength(2);
    const page2 = await s.call('GET', `/v1/suppressions?reason=manual&limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body).toMatchObject({ data: [expect.any(Object)], nextCursor: null });
    expect(new Set([...page1.body.data, ...page2.body.data].map((x: { address: string }) => x.address)).size).toBe(3);

    expect((await s.call('DELETE', `/v1/suppressions/${encodeURIComponent('manual.user@example.com')}`)).status).toBe(404); // local part keeps its case
    expect((await s.call('DELETE', `/v1/suppressions/${encodeURIComponent('Manual.User@EXAMPLE.COM')}`)).status).toBe(204);
    expect((await s.call('DELETE', `/v1/suppressions/${encodeURIComponent('Manual.User@example.com')}`)).status).toBe(404);
  });

  test.each([
    ['not an address', { address: 'not an address' }, '/address'],
    ['CR/LF', { address: 'a@example.com\r\nBcc: b@example.com' }, '/address'],
    ['10,000 characters', { address: `${'a'.repeat(9_988)}@example.com` }, '/address'],
    ['a reason other than manual', { address: 'r@example.com', reason: 'hard_bounce' }, '/reason'],
    ['an unknown field', { address: 'u@example.com', extra: 1 }, '/'],
  ])('bad input (%s): 422 problem+json naming the field, nothing stored', async (_what, body, path) => {
    const before = await count();
    const res = await fetch(`http://127.0.0.1:${s.api.port}/v1/suppressions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await res.json()) as { errors: { path: string }[] };
    expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect(JSON.stringify(problem)).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(await count()).toBe(before);
  });

  test('bad query and path input: 422', async () => {
    expect((await s.call('GET', '/v1/suppressions?reason=bored')).status).toBe(422);
    expect((await s.call('GET', '/v1/suppressions?cursor=forged')).status).toBe(422);
    expect((await s.call('DELETE', `/v1/suppressions/${encodeURIComponent('no-at-sign')}`)).status).toBe(422);
  });

  test('needs suppressions:manage (or admin)', async () => {
    const keys = createApiKeyService({ db: s.t.db });
    const { key: sender } = await keys.create({ name: 'sender', scopes: ['emails:send'] });
    const { key: manager } = await keys.create({ name: 'manager', scopes: ['suppressions:manage'] });
    expect((await s.call('GET', '/v1/suppressions', undefined, sender)).status).toBe(403);
    expect((await s.call('GET', '/v1/suppressions', undefined, manager)).status).toBe(200);
  });

  test('the OpenAPI document describes the routes', async () => {
    const doc = (await (await fetch(`http://127.0.0.1:${s.api.port}/openapi.json`)).json()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/suppressions', '/v1/suppressions/{address}']));
    expect(doc.components.schemas.EmailReport).toBeDefined();
    expect(doc.components.schemas.EmailStatus.enum).toEqual(expect.arrayContaining(['bounced', 'suppressed']));
  });

});

describe('the worker', () => {
  test('sends a partly suppressed email to the rest; the attempt names who was left out', async () => {
    expect((await s.call('POST', '/v1/suppressions', { address: 'gone@example.org' })).status).toBe(201);
    const id = await s.send({ from: 'shop@example.com', to: ['kept@example.org'], cc: ['Gone <gone@EXAMPLE.org>'], subject: 'Partly', text: 'Hi.' });
    const email = await s.email(id, (e) => e.status === 'sent', 'sent');
    expect(email.attempts).toEqual([expect.objectContaining({ outcome: 'sent', suppressedRecipients: ['gone@example.org'] })]);
    const message = await eventually(async () => s.smtp!.messages.find((m) => m.emailId === id), 'the message');
    expect(message.envelope.rcptTo).toEqual(['kept@example.org']);
    expect(message.parsed().header('cc')).toContain('gone@example.org'); // the headers still name everyone
  });

  test('signs with DKIM when From is in DKIM_DOMAIN: mailauth verifies it; a changed body fails', async () => {
    const key = parseDkimKey(DKIM_KEY) as DkimSettings;
    const { name, value } = dkimDnsRecord({ ...key, domain: 'example.com', selector: 'ease1' });
    const resolver = async (host: string) => {
      if (host === name) return [[value]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    };
    const signedId = await s.send({ from: 'Shop <shop@example.com>', to: 'reader@example.org', subject: 'Signed', text: 'Authentic.' });
    const plainId = await s.send({ from: 'someone@other.example', to: 'reader@example.org', subject: 'Not ours', text: 'No signature.' });
    const signed = await eventually(async () => s.smtp!.messages.find((m) => m.emailId === signedId), 'the signed message');
    const plain = await eventually(async () => s.smtp!.messages.find((m) => m.emailId === plainId), 'the other message');
    const result = await dkimVerify(signed.raw, { resolver });
    expect(result.results.map((r: { status: { result: string }; signingDomain: string }) => [r.status.result, r.signingDomain])).toEqual([['pass', 'example.com']]);
    const tampered = Buffer.from(signed.raw.toString('latin1').replace('Authentic.', 'Authentic!'), 'latin1');
    expect((await dkimVerify(tampered, { resolver })).results[0].status.result).not.toBe('pass');
    expect(plain.raw.toString('latin1')).not.toMatch(/^DKIM-Signature:/m);
  });
});

test('the list survives a restart of the api (a new process reads it from PostgreSQL)', async () => {
  expect((await s.call('POST', '/v1/suppressions', { address: 'durable@example.com' })).status).toBe(201);
  await s.api.lifecycle.shutdown('test restart');
  const restarted = await startApi(loadConfig(s.t.env), createLogger({ level: 'silent' }));
  try {
    const res = await fetch(`http://127.0.0.1:${restarted.port}/v1/suppressions?search=durable`, { headers: { authorization: `Bearer ${s.key}` } });
    expect(((await res.json()) as { data: unknown[] }).data).toEqual([expect.objectContaining({ address: 'durable@example.com', reason: 'manual' })]);
  } finally {
    await restarted.lifecycle.shutdown('test');
  }
});
