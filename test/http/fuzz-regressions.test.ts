/**
 * Regressions from the API fuzzer (issue 10): each input once gave a 500 or was silently
 * rewritten. Now every one is a 4xx problem+json, and nothing is stored.
 */
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { MAX_JSON_DEPTH } from '../../app/shared/text';
import { expectProblem, rawRequest } from '../support/http';
import { FAST_ENV, startStack, type Stack } from '../support/stack';

let s: Stack;

beforeAll(async () => {
  s = await startStack('fuzz_regressions', { env: FAST_ENV, worker: false });
  expect((await s.call('POST', '/v1/templates', { name: 'existing', subject: 'Hi', text: 'Hello' })).status).toBe(201);
});
afterAll(async () => {
  await s?.stop();
});

/** Any method, any bytes, any headers, with the stack's key. */
const raw = (method: string, path: string, body?: string | Buffer, headers?: Record<string, string>) => rawRequest(s.base, s.key, method, path, body, headers);

async function storedRows(): Promise<number[]> {
  const db = s.t.db;
  return Promise.all([db.email.count(), db.template.count(), db.webhookEndpoint.count(), db.event.count(), db.idempotencyRecord.count()]);
}

const email = { to: 'someone@example.com', subject: 'Hello', text: 'Body' };
const deep = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
// JSON text with escapes that JSON.stringify would not produce from a well-formed string.
const NUL = '\\u0000';
const LONE = '\\ud800';

interface Case {
  name: string;
  method?: string;
  path?: string;
  /** JSON text sent as it is. */
  body?: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  field?: string;
  detail?: RegExp;
}

const cases: Case[] = [
  // 3, 4: NUL and lone surrogates in stored free text, one rule everywhere
  { name: 'NUL in email text', body: `{"to":"a@example.com","subject":"s","text":"a${NUL}b"}`, status: 422, field: '/text', detail: /NUL/ },
  { name: 'NUL in email html', body: `{"to":"a@example.com","subject":"s","html":"<p>${NUL}</p>"}`, status: 422, field: '/html' },
  { name: 'NUL in email metadata', body: `{"to":"a@example.com","subject":"s","text":"t","metadata":{"k":"${NUL}"}}`, status: 422, field: '/metadata/k' },
  { name: 'lone surrogate in email subject', body: `{"to":"a@example.com","subject":"${LONE}","text":"t"}`, status: 422, field: '/subject', detail: /surrogate/ },
  { name: 'lone surrogate in a batch item', path: '/v1/emails/batch', body: `[{"to":"a@example.com","subject":"s","text":"ok"},{"to":"a@example.com","subject":"s","text":"x${LONE}"}]`, status: 422, field: '/1/text' },
  { name: 'NUL in an event payload', path: '/v1/events', body: `{"type":"order.paid","payload":{"note":"${NUL}"}}`, status: 422, field: '/payload/note' },
  { name: 'lone surrogate in an event payload key', path: '/v1/events', body: `{"type":"order.paid","payload":{"${LONE}":1}}`, status: 422, field: '/payload' },
  { name: 'NUL in a template body', path: '/v1/templates', body: `{"name":"nul-body","subject":"s","text":"${NUL}"}`, status: 422, field: '/text' },
  { name: 'lone surrogate in a template body', path: '/v1/templates', body: `{"name":"lone-body","subject":"s","html":"${LONE}"}`, status: 422, field: '/html' },
  { name: 'lone surrogate in an endpoint description', path: '/v1/webhook-endpoints', body: `{"url":"https://example.com/h","description":"${LONE}"}`, status: 422, field: '/description' },
  { name: 'NUL in a template PATCH', method: 'PATCH', path: '/v1/templates/existing', body: `{"text":"${NUL}"}`, status: 422, field: '/text' },
  // 5: nesting
  { name: `event payload nested 10,000 deep`, path: '/v1/events', body: `{"type":"order.paid","payload":${deep(10_000)}}`, status: 422, detail: /deeper than 32/ },
  { name: 'template data nested 10,000 deep', path: '/v1/templates/existing/render', body: `{"data":${deep(10_000)}}`, status: 422, detail: /deeper than 32/ },
  // 6, 7: %00 in path and query
  { name: '%00 as a template idOrName (GET)', method: 'GET', path: '/v1/templates/%00', status: 404 },
  { name: '%00 as a template idOrName (PATCH)', method: 'PATCH', path: '/v1/templates/%00', body: '{"text":"x"}', status: 404 },
  { name: '%00 as a template idOrName (DELETE)', method: 'DELETE', path: '/v1/templates/%00', status: 404 },
  { name: '%00 as a template idOrName (render)', path: '/v1/templates/%00/render', body: '{}', status: 404 },
  { name: '%00 in the tag query', method: 'GET', path: '/v1/emails?tag=%00', status: 422, field: '/tag' },
  // 8: dates
  { name: 'scheduledAt in year 0000', body: JSON.stringify({ ...email, scheduledAt: '0000-01-01T00:00:00Z' }), status: 422, field: '/scheduledAt' },
  // refuse rather than rewrite
  { name: 'webhook URL with CR/LF', path: '/v1/webhook-endpoints', body: JSON.stringify({ url: 'https://exam\r\nple.com/h' }), status: 422, field: '/url' },
  { name: 'webhook URL with a tab', path: '/v1/webhook-endpoints', body: JSON.stringify({ url: 'https://example.com/\th' }), status: 422, field: '/url' },
  { name: 'webhook URL with NUL', path: '/v1/webhook-endpoints', body: `{"url":"https://example.com/${NUL}h"}`, status: 422, field: '/url' },
  ...['application/json-patch+json', 'application/merge-patch+json', 'application/problem+json'].map((type) => ({
    name: `a ${type} body`,
    body: JSON.stringify(email),
    headers: { 'content-type': type },
    status: 415,
    detail: /application\/json/,
  })),
  { name: 'limit=0x10', method: 'GET', path: '/v1/emails?limit=0x10', status: 422, field: '/limit' },
  { name: 'limit=1e1', method: 'GET', path: '/v1/templates?limit=1e1', status: 422, field: '/limit' },
  { name: 'limit= 5', method: 'GET', path: '/v1/webhook-endpoints?limit=%205', status: 422, field: '/limit' },
  { name: 'an empty Idempotency-Key', body: JSON.stringify(email), headers: { 'idempotency-key': '' }, status: 422, field: '/headers/Idempotency-Key' },
  // 2: content codings
  { name: 'Content-Encoding gzip on a body that is not gzip', body: JSON.stringify(email), headers: { 'content-encoding': 'gzip' }, status: 400, detail: /not valid gzip/ },
  { name: 'Content-Encoding deflate on a body that is not deflate', body: JSON.stringify(email), headers: { 'content-encoding': 'deflate' }, status: 400, detail: /not valid deflate/ },
  { name: 'an unknown Content-Encoding', body: JSON.stringify(email), headers: { 'content-encoding': 'compress' }, status: 415, detail: /Content-Encoding/ },
  { name: 'stacked Content-Encodings', body: gzipSync(gzipSync(JSON.stringify(email))), headers: { 'content-encoding': 'gzip, gzip' }, status: 415 },
  { name: 'gzip that expands past the body limit', body: gzipSync(Buffer.alloc(11 * 1024 * 1024, 0x20)), headers: { 'content-encoding': 'gzip' }, status: 413 },
  { name: 'invalid JSON', body: '{"to": ', status: 400, detail: /request body is not valid JSON/ },
  // 1 and 405s
  { name: 'TRACE on a route', method: 'TRACE', path: '/v1/emails', status: 405 },
  { name: 'PUT on a route', method: 'PUT', path: '/v1/emails', body: JSON.stringify(email), status: 405 },
];

describe('bad input found by the fuzzer', () => {
  test.each(cases)('$name → $status problem+json, nothing stored', async (c) => {
    const before = await storedRows();
    const res = await raw(c.method ?? 'POST', c.path ?? '/v1/emails', c.body, c.headers);
    expectProblem(res, c.status, { path: c.field, detail: c.detail });
    expect(await storedRows()).toEqual(before);
  });
});

describe('methods', () => {
  test('every 405 names the allowed methods', async () => {
    for (const [method, path] of [['TRACE', '/v1/emails'], ['DELETE', '/v1/emails'], ['PUT', '/v1/templates/existing'], ['POST', '/health/live'], ['TRACE', '/metrics']]) {
      const res = await raw(method, path);
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 405 });
      expect(res.headers.get('allow')?.split(', ')).toContain('OPTIONS');
    }
    expect((await raw('DELETE', '/v1/emails')).headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'HEAD', 'OPTIONS', 'POST']);
  });

  test('OPTIONS is 204 with Allow and no CORS headers; an unknown path stays 404', async () => {
    const res = await raw('OPTIONS', '/v1/templates/existing', undefined, { origin: 'https://example.com', 'access-control-request-method': 'PATCH' });
    expect(res.status).toBe(204);
    expect(res.headers.get('allow')?.split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH']);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expectProblem(await raw('OPTIONS', '/v1/nothing-here'), 404);
    expectProblem(await raw('TRACE', '/v1/nothing-here'), 404);
  });
});

/** Sends raw bytes and returns the status line's code (for what Node refuses before Koa). */
function rawStatus(request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(new URL(s.base).port), '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (m) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
  });
}

describe("refused by Node's parser before the application (documented in the README)", () => {
  test('an unknown method is a bare 400, headers over 16 KiB a bare 431', async () => {
    expect(await rawStatus('FOO /v1/emails HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(400);
    expect(await rawStatus(`GET /v1/emails HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`)).toBe(431);
  });
});

describe('accepted edges', () => {
  test(`a gzip body is decoded, and ${MAX_JSON_DEPTH} levels of nesting are allowed`, async () => {
    const gz = await raw('POST', '/v1/emails', gzipSync(JSON.stringify({ ...email, text: 'gzipped' })), { 'content-encoding': 'gzip' });
    expect(gz.status).toBe(202);
    expect((await s.t.db.email.findUniqueOrThrow({ where: { id: gz.body.id } })).text).toBe('gzipped');
    // The body is level 1, so deep(n) as the payload fills levels 2 to n + 1.
    const ok = await raw('POST', '/v1/events', `{"type":"order.paid","payload":${deep(MAX_JSON_DEPTH - 1)}}`);
    expect(ok.status).toBe(202);
    const over = await raw('POST', '/v1/events', `{"type":"order.paid","payload":${deep(MAX_JSON_DEPTH)}}`);
    expectProblem(over, 422, { detail: /deeper than 32/ });
  });

  test('surrogate pairs (emoji) are text like any other', async () => {
    const res = await raw('POST', '/v1/emails', JSON.stringify({ ...email, subject: 'Hi 👋', text: '\ud83d\ude00' }));
    expect(res.status).toBe(202);
  });

  test('two concurrent PATCHes of one template: both succeed, the last writer wins', async () => {
    await s.call('POST', '/v1/templates', { name: 'racy', subject: 'v0', text: 'v0' });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => s.call('PATCH', '/v1/templates/racy', { text: `v${i + 1}` })));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const final = (await s.call('GET', '/v1/templates/racy')).body.text;
    expect(results.map((r) => r.body.text)).toContain(final);
  });

  test('concurrent PATCHes of different fields both stay', async () => {
    await s.call('POST', '/v1/templates', { name: 'racy-fields', subject: 's0', text: 't0' });
    const [a, b] = await Promise.all([s.call('PATCH', '/v1/templates/racy-fields', { subject: 's1' }), s.call('PATCH', '/v1/templates/racy-fields', { html: '<p>h1</p>' })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((await s.call('GET', '/v1/templates/racy-fields')).body).toMatchObject({ subject: 's1', html: '<p>h1</p>', text: 't0' });
  });

  test('GET /v1/templates lists without bodies', async () => {
    await s.call('POST', '/v1/templates', { name: 'big-body', subject: 'Big', html: 'x'.repeat(1024 * 1024) });
    const res = await s.call('GET', '/v1/templates?limit=100');
    const big = res.body.data.find((t: { name: string }) => t.name === 'big-body');
    expect(big).toEqual({ id: expect.any(String), name: 'big-body', subject: 'Big', createdAt: expect.any(String), updatedAt: expect.any(String) });
    expect(JSON.stringify(res.body).length).toBeLessThan(10_000);
  });

  test('a well-formed Idempotency-Key still works', async () => {
    const first = await s.call('POST', '/v1/emails', email, { 'idempotency-key': 'fuzz-1' });
    const again = await s.call('POST', '/v1/emails', email, { 'idempotency-key': 'fuzz-1' });
    expect([first.status, again.status, again.body.id]).toEqual([202, 202, first.body.id]);
  });
});
