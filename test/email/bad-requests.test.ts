/**
 * Bad input to the email and template routes: every case is a 4xx problem+json that names the
 * problem (the field's JSON pointer for 422s), nothing is stored, and nothing is ever a 500.
 */
import { problemFailures, request } from '../support/http';
import { FAST_ENV, startStack, type Stack } from '../support/stack';

let s: Stack;

beforeAll(async () => {
  s = await startStack('email_bad_requests', { env: FAST_ENV, worker: false });
  await s.call('POST', '/v1/templates', { name: 'existing', subject: 'Hi {{ name }}', text: 'Hello {{ name }}' });
});
afterAll(async () => {
  await s?.stop();
});

const ok = { to: 'someone@example.com', subject: 'Hello', text: 'Body' };
const days = (n: number) => new Date(Date.now() + n * 86_400_000).toISOString();
const b64 = (bytes: number) => Buffer.alloc(bytes, 7).toString('base64');

interface Case {
  name: string;
  method?: string;
  /** Default POST /v1/emails. */
  url?: string;
  /** An object is sent as JSON; a string as it is. */
  body?: unknown;
  headers?: Record<string, string>;
  auth?: string | null;
  status: number;
  /** Expected in `detail`. */
  detail?: RegExp;
  /** Expected among `errors[].path` (422). */
  path?: string;
}

const cases: Case[] = [
  // transport-level
  { name: 'malformed JSON', body: '{"to": "a@example.com", ', status: 400, detail: /JSON/ },
  { name: 'JSON with trailing garbage', body: '{"to": "a@example.com"} x', status: 400, detail: /JSON/ },
  { name: 'a bare JSON string', body: '"hello"', status: 400, detail: /JSON/ },
  { name: 'text/plain body', body: 'to=a@example.com', headers: { 'content-type': 'text/plain' }, status: 415, detail: /application\/json/ },
  { name: 'form-encoded body', body: 'to=a%40example.com', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, detail: /application\/json/ },
  { name: 'oversized body (over BODY_LIMIT_BYTES)', body: JSON.stringify({ ...ok, text: 'x'.repeat(10.5 * 1024 * 1024) }), status: 413, detail: /too large/ },
  { name: 'no API key', auth: null, body: ok, status: 401, detail: /missing API key/ },
  { name: 'unknown API key', auth: 'ee_thisisnotarealkeyatallreally', body: ok, status: 401, detail: /invalid/ },
  { name: 'PUT on /v1/emails', method: 'PUT', body: ok, status: 405 },
  // shape and types
  { name: 'empty object', body: {}, status: 422, path: '/to' },
  { name: 'an array to /v1/emails', body: [ok], status: 422, path: '/' },
  { name: 'to of the wrong type', body: { ...ok, to: 42 }, status: 422, path: '/to' },
  { name: 'an invalid address', body: { ...ok, to: ['not-an-email'] }, status: 422, path: '/to/0', detail: /not an email address/ },
  { name: 'an address without a domain dot', body: { ...ok, to: 'user@localhost' }, status: 422, path: '/to/0' },
  { name: 'an unknown field', body: { ...ok, priority: 'high' }, status: 422, detail: /priority/ },
  { name: 'subject missing', body: { to: ok.to, text: 'x' }, status: 422, path: '/subject' },
  { name: 'no text, html or template', body: { to: ok.to, subject: 's' }, status: 422, path: '/text' },
  { name: 'subject of the wrong type', body: { ...ok, subject: ['a'] }, status: 422, path: '/subject' },
  // limits
  { name: '51 recipients in to', body: { ...ok, to: Array.from({ length: 51 }, (_, i) => `u${i}@example.com`) }, status: 422, path: '/to', detail: /at most 50/ },
  {
    name: '60 recipients across to and cc',
    body: { ...ok, to: Array.from({ length: 30 }, (_, i) => `t${i}@example.com`), cc: Array.from({ length: 30 }, (_, i) => `c${i}@example.com`) },
    status: 422,
    path: '/to',
    detail: /across to, cc and bcc/,
  },
  { name: 'attachments over 7 MiB in total', body: { ...ok, attachments: [{ filename: 'big.bin', content: b64(7 * 1024 * 1024 + 100_000) }] }, status: 422, path: '/attachments', detail: /limit/ },
  { name: '21 attachments', body: { ...ok, attachments: Array.from({ length: 21 }, (_, i) => ({ filename: `f${i}.txt`, content: 'eA==' })) }, status: 422, path: '/attachments' },
  // header injection
  { name: 'CR/LF in the subject', body: { ...ok, subject: 'Hi\r\nBcc: victim@example.com' }, status: 422, path: '/subject', detail: /header injection/ },
  { name: 'LF in from', body: { ...ok, from: 'a@example.com\nBcc: victim@example.com' }, status: 422, path: '/from' },
  { name: 'CR/LF in a to address', body: { ...ok, to: ['a@example.com\r\nBcc: v@example.com'] }, status: 422, path: '/to/0' },
  { name: 'CR/LF in a header value', body: { ...ok, headers: { 'X-Note': 'a\r\nBcc: v@example.com' } }, status: 422, path: '/headers/X-Note' },
  { name: 'a header name with a colon', body: { ...ok, headers: { 'X-Bad:Name': 'v' } }, status: 422, detail: /header name/ },
  { name: 'a reserved header (Bcc)', body: { ...ok, headers: { Bcc: 'v@example.com' } }, status: 422, detail: /set by the API/ },
  { name: 'CR/LF in an attachment filename', body: { ...ok, attachments: [{ filename: 'a.txt\r\nX: y', content: 'eA==' }] }, status: 422, path: '/attachments/0/filename' },
  { name: 'a path as attachment filename', body: { ...ok, attachments: [{ filename: '../../etc/passwd', content: 'eA==' }] }, status: 422, path: '/attachments/0/filename' },
  { name: 'attachment content that is not base64', body: { ...ok, attachments: [{ filename: 'a.txt', content: 'not base64!' }] }, status: 422, path: '/attachments/0/content' },
  // dates, tags, metadata
  { name: 'scheduledAt not a date', body: { ...ok, scheduledAt: 'tomorrow' }, status: 422, path: '/scheduledAt' },
  { name: 'scheduledAt without a time zone', body: { ...ok, scheduledAt: '2030-01-01T09:00:00' }, status: 422, path: '/scheduledAt' },
  { name: 'scheduledAt more than 30 days ahead', body: { ...ok, scheduledAt: days(45) }, status: 422, path: '/scheduledAt', detail: /30 days/ },
  { name: 'a tag with spaces', body: { ...ok, tags: ['two words'] }, status: 422, path: '/tags/0' },
  { name: 'a metadata value that is not a string', body: { ...ok, metadata: { count: 3 } }, status: 422, path: '/metadata/count' },
  // templates in emails
  { name: 'subject together with a template', body: { to: ok.to, subject: 's', template: { name: 'existing', data: { name: 'x' } } }, status: 422, path: '/subject' },
  { name: 'template with both id and name', body: { to: ok.to, template: { id: '00000000-0000-4000-8000-000000000000', name: 'existing' } }, status: 422, path: '/template' },
  { name: 'an unknown template', body: { to: ok.to, template: { name: 'nope', data: {} } }, status: 422, path: '/template', detail: /unknown template/ },
  { name: 'template data missing a variable', body: { to: ok.to, template: { name: 'existing', data: {} } }, status: 422, path: '/template/data/name' },
  { name: 'Idempotency-Key of 300 characters', body: ok, headers: { 'idempotency-key': 'k'.repeat(300) }, status: 422, detail: /Idempotency-Key/ },
  // batch
  { name: 'batch of 101', url: '/v1/emails/batch', body: Array.from({ length: 101 }, () => ok), status: 422, path: '/', detail: /at most 100/ },
  { name: 'empty batch', url: '/v1/emails/batch', body: [], status: 422, path: '/' },
  { name: 'batch as an object', url: '/v1/emails/batch', body: { emails: [ok] }, status: 422, path: '/' },
  { name: 'batch with one bad item', url: '/v1/emails/batch', body: [ok, ok, { ...ok, subject: 'a\nb' }], status: 422, path: '/2/subject' },
  // listing
  { name: 'a forged cursor', method: 'GET', url: '/v1/emails?cursor=bm90LWEtY3Vyc29y', status: 422, path: '/cursor', detail: /cursor/ },
  { name: 'limit 0', method: 'GET', url: '/v1/emails?limit=0', status: 422, path: '/limit' },
  { name: 'limit not a number', method: 'GET', url: '/v1/emails?limit=ten', status: 422, path: '/limit' },
  { name: 'an unknown status filter', method: 'GET', url: '/v1/emails?status=lost', status: 422, path: '/status' },
  { name: 'an unknown query parameter', method: 'GET', url: '/v1/emails?sort=asc', status: 422, detail: /sort/ },
  { name: 'a malformed email id', method: 'GET', url: '/v1/emails/1234', status: 404 },
  // templates
  { name: 'template with CR/LF in its subject', url: '/v1/templates', body: { name: 'inj', subject: 'a\r\nb', text: 'x' }, status: 422, path: '/subject' },
  { name: 'template with an invalid name', url: '/v1/templates', body: { name: 'has spaces', subject: 's', text: 'x' }, status: 422, path: '/name' },
  { name: 'template without a body', url: '/v1/templates', body: { name: 'empty', subject: 's' }, status: 422, path: '/text' },
  { name: 'template with a broken variable', url: '/v1/templates', body: { name: 'broken', subject: 's', text: 'Hi {{ na me }}' }, status: 422, path: '/text' },
  { name: 'template patch with nothing', method: 'PATCH', url: '/v1/templates/existing', body: {}, status: 422, detail: /at least one field/ },
  { name: 'render with data that is not an object', url: '/v1/templates/existing/render', body: { data: 'x' }, status: 422, path: '/data' },
  { name: 'render of an unknown template', url: '/v1/templates/nope/render', body: { data: {} }, status: 404 },
];

async function counts() {
  const [emails, templates, idempotency, events] = await Promise.all([
    s.t.db.email.count(),
    s.t.db.template.count(),
    s.t.db.idempotencyRecord.count(),
    s.t.db.event.count(),
  ]);
  return { emails, templates, idempotency, events };
}

test(`${cases.length} bad requests: each a 4xx problem+json naming the problem, nothing stored, never a 500`, async () => {
  expect(cases.length).toBeGreaterThanOrEqual(30);
  const before = await counts();
  const failures: string[] = [];
  for (const c of cases) {
    const method = c.method ?? 'POST';
    const headers = { ...(typeof c.body === 'string' ? { 'content-type': 'application/json' } : {}), ...c.headers };
    const res = await request(s.base, c.auth === null ? undefined : (c.auth ?? s.key), method, c.url ?? '/v1/emails', c.body, headers);
    const wrong = problemFailures(res, { status: c.status, detail: c.detail, path: c.path });
    if (wrong.length) failures.push(`${c.name}: ${wrong.join('; ')}`);
  }
  expect(failures).toEqual([]);
  expect(await counts()).toEqual(before);
});

test('a valid request on the same stack is accepted (the cases fail for their own reason)', async () => {
  const res = await s.call('POST', '/v1/emails', ok);
  expect(res.status).toBe(202);
});
