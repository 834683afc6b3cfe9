/**
 * Sending through the real api and worker (in this process) to a real SMTP server: what arrives
 * (envelope, headers, bodies, attachments), templates, batches, idempotency, scheduling and
 * cancelling, reading and listing, the events recorded for webhooks, metrics and OpenAPI.
 */
import { randomUUID } from 'node:crypto';
import { createApiKeyService } from '../../app/auth/api-keys';
import { eventually } from '../support/eventually';
import { request } from '../support/http';
import { emailReaches, FAST_ENV, jobsFinished, receivedEmail, startStack, type Stack } from '../support/stack';

let s: Stack;

beforeAll(async () => {
  s = await startStack('email_send', { env: FAST_ENV });
});
afterAll(async () => {
  await s?.stop();
});
beforeEach(() => s.smtp.reset());

const pdf = Buffer.from('%PDF-1.4 fake but binary \x00\x01\x02\xff', 'latin1');

async function sent(id: string) {
  await emailReaches(s, id, 'sent');
  return receivedEmail(s, id);
}

describe('POST /v1/emails', () => {
  test('delivers with the right envelope, headers, bodies and attachments', async () => {
    const res = await s.call('POST', '/v1/emails', {
      from: 'Shop "Team" <shop@example.com>',
      to: ['Doe, Jane <jane@example.com>', 'bob@example.com'],
      cc: 'carol@example.com',
      bcc: ['dave@example.com'],
      replyTo: 'support@example.com',
      subject: 'Your order — shipped ✓',
      text: 'Plain text body',
      html: '<h1>HTML body</h1>',
      headers: { 'X-Campaign': 'autumn', 'List-Unsubscribe': '<https://example.com/u>' },
      attachments: [
        { filename: 'invoice.pdf', content: pdf.toString('base64'), contentType: 'application/pdf' },
        { filename: 'notes.txt', content: Buffer.from('some notes').toString('base64') },
      ],
      tags: ['orders', 'shipping'],
      metadata: { orderId: '42' },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'queued' });

    const msg = await sent(res.body.id);
    expect(msg.envelope.mailFrom).toBe('shop@example.com');
    expect(msg.envelope.rcptTo.sort()).toEqual(['bob@example.com', 'carol@example.com', 'dave@example.com', 'jane@example.com']);
    const p = msg.parsed();
    expect(p.subject).toBe('Your order — shipped ✓');
    expect(p.header('to')).toMatch(/Doe, Jane.*<jane@example\.com>.*bob@example\.com/);
    expect(p.header('cc')).toBe('carol@example.com');
    expect(p.header('bcc')).toBeUndefined(); // only in the envelope
    expect(p.header('reply-to')).toBe('support@example.com');
    expect(p.header('x-campaign')).toBe('autumn');
    expect(p.header('list-unsubscribe')).toBe('<https://example.com/u>');
    expect(p.header('x-easeemail-id')).toBe(res.body.id);
    expect(p.text?.trim()).toBe('Plain text body');
    expect(p.html?.trim()).toBe('<h1>HTML body</h1>');
    expect(p.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      ['invoice.pdf', 'application/pdf'],
      ['notes.txt', 'text/plain'],
    ]);
    expect(p.attachments[0].content.equals(pdf)).toBe(true);

    const email = (await s.call('GET', `/v1/emails/${res.body.id}`)).body;
    expect(p.header('message-id')).toBe(email.messageId);
    expect(email.messageId).toBe(`<${res.body.id}@example.com>`);
    expect(email).toMatchObject({
      status: 'sent',
      attemptCount: 1,
      tags: ['orders', 'shipping'],
      metadata: { orderId: '42' },
      attachments: [
        { filename: 'invoice.pdf', contentType: 'application/pdf', size: pdf.length },
        { filename: 'notes.txt', contentType: null, size: 10 },
      ],
    });
    expect(email.attempts).toEqual([
      { number: 1, startedAt: expect.any(String), finishedAt: expect.any(String), outcome: 'sent', smtpResponse: expect.stringMatching(/^250/), error: null, suppressedRecipients: [] },
    ]);
    expect(Date.parse(email.sentAt)).toBeGreaterThanOrEqual(Date.parse(email.createdAt));
  });

  test('a large email (its body loaded after the claim, within the memory budget) arrives whole', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const html = `<p>${'large body '.repeat(20_000)}</p>`;
    const res = await s.call('POST', '/v1/emails', {
      to: 'big@example.com',
      subject: 'Large',
      text: 'see attachment',
      html,
      attachments: [{ filename: 'data.bin', content: big.toString('base64'), contentType: 'application/octet-stream' }],
    });
    expect(res.status).toBe(202);
    const p = (await sent(res.body.id)).parsed();
    expect(p.text?.trim()).toBe('see attachment');
    expect(p.html?.trim()).toBe(html);
    expect(p.attachments).toHaveLength(1);
    expect(p.attachments[0].content.equals(big)).toBe(true);
  });

  test('uses MAIL_FROM when from is absent', async () => {
    const res = await s.call('POST', '/v1/emails', { to: 'x@example.com', subject: 'Default sender', text: 'x' });
    const msg = await sent(res.body.id);
    expect(msg.envelope.mailFrom).toBe('no-reply@localhost');
    expect(msg.parsed().header('message-id')).toBe(`<${res.body.id}@localhost>`);
  });

  test('records email.sent for webhooks in the same transaction as the status', async () => {
    const res = await s.call('POST', '/v1/emails', { to: 'events@example.com', subject: 'Evented', text: 'x', tags: ['t'] });
    await sent(res.body.id);
    const events = await s.t.db.event.findMany({ where: { type: 'email.sent' } });
    const event = events.find((e) => (e.payload as { emailId: string }).emailId === res.body.id);
    expect(event?.payload).toMatchObject({ emailId: res.body.id, status: 'sent', to: ['events@example.com'], subject: 'Evented', tags: ['t'], attempts: 1 });
  });
});

describe('templates', () => {
  test('CRUD by id and by name, with the variables listed', async () => {
    const created = await s.call('POST', '/v1/templates', { name: 'crud-demo', subject: 'Hi {{ name }}', text: 'Hello {{ name }} from {{ team.name }}' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(String), name: 'crud-demo', variables: ['name', 'team.name'], html: null });
    expect((await s.call('GET', `/v1/templates/${created.body.id}`)).body.name).toBe('crud-demo');
    expect((await s.call('GET', '/v1/templates/crud-demo')).body.id).toBe(created.body.id);
    expect((await s.call('POST', '/v1/templates', { name: 'crud-demo', subject: 'x', text: 'y' })).status).toBe(409);

    const patched = await s.call('PATCH', '/v1/templates/crud-demo', { html: '<p>{{ name }}</p>' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ html: '<p>{{ name }}</p>', text: 'Hello {{ name }} from {{ team.name }}' });

    const list = await s.call('GET', '/v1/templates?limit=100');
    expect(list.body.data.map((t: { name: string }) => t.name)).toContain('crud-demo');

    expect((await s.call('DELETE', '/v1/templates/crud-demo')).status).toBe(204);
    expect((await s.call('GET', '/v1/templates/crud-demo')).status).toBe(404);
  });

  test('lists in name order with a cursor', async () => {
    for (const n of ['page-a', 'page-b', 'page-c']) await s.call('POST', '/v1/templates', { name: n, subject: n, text: n });
    const first = await s.call('GET', '/v1/templates?limit=2');
    const second = await s.call('GET', `/v1/templates?limit=2&cursor=${first.body.nextCursor}`);
    const names = [...first.body.data, ...second.body.data].map((t: { name: string }) => t.name).filter((n: string) => n.startsWith('page-'));
    expect(names).toEqual(['page-a', 'page-b', 'page-c']);
  });

  test('render escapes HTML by default, {{{ }}} opts out, text and subject stay raw', async () => {
    await s.call('POST', '/v1/templates', {
      name: 'welcome',
      subject: 'Welcome, {{ user.name }}!',
      html: '<p>Hello {{ user.name }}</p>{{{ signature }}}',
      text: 'Hello {{ user.name }}',
    });
    const data = { user: { name: '<Tom & "Jerry">' }, signature: '<b>The team</b>' };
    const preview = await s.call('POST', '/v1/templates/welcome/render', { data });
    expect(preview.status).toBe(200);
    expect(preview.body).toEqual({
      subject: 'Welcome, <Tom & "Jerry">!',
      html: '<p>Hello &lt;Tom &amp; &quot;Jerry&quot;&gt;</p><b>The team</b>',
      text: 'Hello <Tom & "Jerry">',
    });

    const res = await s.call('POST', '/v1/emails', { to: 'tpl@example.com', template: { name: 'welcome', data } });
    expect(res.status).toBe(202);
    const p = (await sent(res.body.id)).parsed();
    expect(p.subject).toBe('Welcome, <Tom & "Jerry">!');
    expect(p.html?.trim()).toBe(preview.body.html);
    expect(p.text?.trim()).toBe(preview.body.text);
    const email = (await s.call('GET', `/v1/emails/${res.body.id}`)).body;
    expect(email.templateId).toEqual(expect.any(String));
  });

  test('missing variables and unknown templates are 422 and store nothing', async () => {
    await s.call('POST', '/v1/templates', { name: 'needs-vars', subject: 'Hi {{ name }}', text: '{{ a.b }}' });
    const before = await s.t.db.email.count();
    const missing = await s.call('POST', '/v1/emails', { to: 'x@example.com', template: { name: 'needs-vars', data: { a: {} } } });
    expect(missing.status).toBe(422);
    expect(missing.body.errors).toEqual(
      expect.arrayContaining([
        { path: '/template/data/name', message: 'missing from the template data' },
        { path: '/template/data/a/b', message: 'missing from the template data' },
      ]),
    );
    const unknown = await s.call('POST', '/v1/emails', { to: 'x@example.com', template: { name: 'no-such-template', data: {} } });
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors).toEqual([{ path: '/template', message: 'no template named "no-such-template"' }]);
    const crlf = await s.call('POST', '/v1/emails', { to: 'x@example.com', template: { name: 'needs-vars', data: { name: 'x\r\nBcc: victim@example.com', a: { b: 1 } } } });
    expect(crlf.status).toBe(422);
    expect(crlf.body.detail).toMatch(/header injection/);
    expect(await s.t.db.email.count()).toBe(before);
  });

  test('a template with a syntax error is refused with its position', async () => {
    const res = await s.call('POST', '/v1/templates', { name: 'broken', subject: 'ok', html: '<p>{{ name </p>' });
    expect(res.status).toBe(422);
    expect(res.body.errors[0]).toMatchObject({ path: '/html', message: expect.stringMatching(/never closed/) });
  });
});

describe('POST /v1/emails/batch', () => {
  test('accepts all in order and delivers each', async () => {
    const res = await s.call('POST', '/v1/emails/batch', [
      { to: 'b1@example.com', subject: 'one', text: '1' },
      { to: 'b2@example.com', subject: 'two', html: '<p>2</p>' },
      { to: 'b3@example.com', subject: 'three', text: '3', scheduledAt: new Date(Date.now() - 1000).toISOString() },
    ]);
    expect(res.status).toBe(202);
    expect(res.body.data).toHaveLength(3);
    const messages = await Promise.all(res.body.data.map((a: { id: string }) => receivedEmail(s, a.id)));
    expect(messages.map((m) => m.parsed().subject)).toEqual(['one', 'two', 'three']);
  });

  test('one bad email rejects the whole batch, naming its index', async () => {
    const before = await s.t.db.email.count();
    const res = await s.call('POST', '/v1/emails/batch', [
      { to: 'ok@example.com', subject: 'fine', text: 'x' },
      { to: ['not an address'], subject: 'bad', text: 'x' },
    ]);
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: '/1/to/0', message: expect.stringMatching(/not an email address/) }]);
    expect(await s.t.db.email.count()).toBe(before);
  });
});

describe('Idempotency-Key', () => {
  const body = { to: 'idem@example.com', subject: 'once', text: 'only once' };

  test('the same key and body return the first response and send once', async () => {
    const key = randomUUID();
    const first = await s.call('POST', '/v1/emails', body, { 'idempotency-key': key });
    const again = await s.call('POST', '/v1/emails', { text: 'only once', subject: 'once', to: 'idem@example.com' }, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    await emailReaches(s, first.body.id, 'sent');
    expect(await s.t.db.email.count({ where: { to: { has: 'idem@example.com' }, subject: 'once' } })).toBe(1);
  });

  test('the same key with another body is 409', async () => {
    const key = randomUUID();
    expect((await s.call('POST', '/v1/emails', body, { 'idempotency-key': key })).status).toBe(202);
    const other = await s.call('POST', '/v1/emails', { ...body, subject: 'different' }, { 'idempotency-key': key });
    expect(other.status).toBe(409);
    expect(other.headers.get('content-type')).toMatch(/problem\+json/);
    expect(other.body.detail).toMatch(/different request body/);
  });

  test('concurrent duplicates create one email and all get its response', async () => {
    const key = randomUUID();
    const responses = await Promise.all(Array.from({ length: 8 }, () => s.call('POST', '/v1/emails', { ...body, subject: 'racing' }, { 'idempotency-key': key })));
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(202));
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    expect(await s.t.db.email.count({ where: { subject: 'racing' } })).toBe(1);
    expect(await s.t.db.idempotencyRecord.count({ where: { key } })).toBe(1);
  });

  test('keys are per API key and per route; a rejected request stores nothing', async () => {
    const key = randomUUID();
    const { key: otherApiKey } = await createApiKeyService({ db: s.t.db }).create({ name: 'other', scopes: ['emails:send'] });
    const a = await s.call('POST', '/v1/emails', body, { 'idempotency-key': key });
    const b = await request(s.base, otherApiKey, 'POST', '/v1/emails', body, { 'idempotency-key': key });
    const batch = await s.call('POST', '/v1/emails/batch', [body], { 'idempotency-key': key });
    expect([a.status, b.status, batch.status]).toEqual([202, 202, 202]);
    expect(new Set([a.body.id, b.body.id, batch.body.data[0].id]).size).toBe(3);

    const badKey = randomUUID();
    expect((await s.call('POST', '/v1/emails', { ...body, to: 'nope' }, { 'idempotency-key': badKey })).status).toBe(422);
    expect(await s.t.db.idempotencyRecord.count({ where: { key: badKey } })).toBe(0);
    expect((await s.call('POST', '/v1/emails', body, { 'idempotency-key': badKey })).status).toBe(202);
  });
});

describe('scheduling and cancelling', () => {
  test('a scheduled email arrives after its time; a cancelled one never arrives', async () => {
    const at = new Date(Date.now() + 1_500);
    const kept = await s.call('POST', '/v1/emails', { to: 'later@example.com', subject: 'scheduled', text: 'x', scheduledAt: at.toISOString() });
    const dropped = await s.call('POST', '/v1/emails', { to: 'never@example.com', subject: 'cancelled', text: 'x', scheduledAt: at.toISOString() });
    expect(kept.body.status).toBe('scheduled');
    expect(dropped.body.status).toBe('scheduled');

    const cancel = await s.call('POST', `/v1/emails/${dropped.body.id}/cancel`);
    expect(cancel.status).toBe(200);
    expect(cancel.body).toEqual({ id: dropped.body.id, status: 'cancelled' });
    expect((await s.call('POST', `/v1/emails/${dropped.body.id}/cancel`)).status).toBe(409);

    const msg = await receivedEmail(s, kept.body.id);
    expect(msg.receivedAt).toBeGreaterThanOrEqual(at.getTime());
    const email = await emailReaches(s, kept.body.id, 'sent');
    expect(Date.parse(email.sentAt)).toBeGreaterThanOrEqual(at.getTime());

    // `kept` (due at the same time) has been sent and the job of `dropped` is gone (removed at the
    // cancel, or run to its end): nothing is left that could still send it.
    await jobsFinished(s.publisher().queues, 'email', [kept.body.id, dropped.body.id]);
    const cancelled = (await s.call('GET', `/v1/emails/${dropped.body.id}`)).body;
    expect(cancelled).toMatchObject({ status: 'cancelled', attemptCount: 0, attempts: [] });
    expect(s.smtp.messages.filter((m) => m.emailId === dropped.body.id)).toEqual([]);
    expect(await s.t.db.event.count({ where: { type: 'email.cancelled' } })).toBeGreaterThanOrEqual(1);
  });

  test('cancel is 409 once sent and 404 for an unknown email', async () => {
    const res = await s.call('POST', '/v1/emails', { to: 'quick@example.com', subject: 'fast', text: 'x' });
    await emailReaches(s, res.body.id, 'sent');
    const late = await s.call('POST', `/v1/emails/${res.body.id}/cancel`);
    expect(late.status).toBe(409);
    expect(late.body.detail).toMatch(/is sent/);
    expect((await s.call('POST', `/v1/emails/${randomUUID()}/cancel`)).status).toBe(404);
  });
});

describe('reading', () => {
  test('lists newest first, filters by status and tag, pages with a cursor', async () => {
    const tag = `list-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await s.call('POST', '/v1/emails', { to: `l${i}@example.com`, subject: `list ${i}`, text: 'x', tags: [tag] })).body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: { id: string }[]; nextCursor: string | null } } = await s.call('GET', `/v1/emails?tag=${tag}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((e) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    await Promise.all(ids.map((id) => emailReaches(s, id, 'sent')));
    const sentOnly = await s.call('GET', `/v1/emails?tag=${tag}&status=sent&limit=100`);
    expect(sentOnly.body.data).toHaveLength(5);
    const queuedOnly = await s.call('GET', `/v1/emails?tag=${tag}&status=queued`);
    expect(queuedOnly.body.data).toHaveLength(0);
  });

  test('an unknown or malformed id is 404', async () => {
    expect((await s.call('GET', `/v1/emails/${randomUUID()}`)).status).toBe(404);
    expect((await s.call('GET', '/v1/emails/not-an-id')).status).toBe(404);
  });

  test('scopes: a send-only key cannot read, a read-only key cannot send', async () => {
    const keys = createApiKeyService({ db: s.t.db });
    const { key: sendOnly } = await keys.create({ name: 'send', scopes: ['emails:send'] });
    const { key: readOnly } = await keys.create({ name: 'read', scopes: ['emails:read'] });
    expect((await request(s.base, sendOnly, 'GET', '/v1/emails')).status).toBe(403);
    expect((await request(s.base, readOnly, 'POST', '/v1/emails', { to: 'a@example.com', subject: 's', text: 't' })).status).toBe(403);
    expect((await request(s.base, readOnly, 'POST', '/v1/templates', { name: 'x', subject: 's', text: 't' })).status).toBe(403);
    expect((await request(s.base, undefined, 'GET', '/v1/emails')).status).toBe(401);
  });
});

describe('observability', () => {
  test('metrics: deliveries, accept-to-delivery and queue jobs on the worker; queue jobs on the api', async () => {
    const res = await s.call('POST', '/v1/emails', { to: 'metrics@example.com', subject: 'm', text: 'x' });
    await emailReaches(s, res.body.id, 'sent');
    const worker = await (await fetch(`http://127.0.0.1:${s.worker!.port}/metrics`)).text();
    expect(worker).toMatch(/^easeemail_email_deliveries_total\{outcome="sent",application="[0-9a-f-]{36}",role="worker"\} [1-9]/m);
    expect(worker).toMatch(/^easeemail_email_accept_to_delivery_seconds_count\{role="worker"\} [1-9]/m);
    expect(worker).toMatch(/^easeemail_queue_jobs\{queue="email-delivery",state="ready",role="worker"\} \d+/m);
    const api = await (await fetch(`${s.base}/metrics`)).text();
    expect(api).toMatch(/^easeemail_queue_oldest_ready_seconds\{queue="webhook-delivery",role="api"\} \d+/m);
    for (const state of ['ready', 'active', 'delayed', 'failed']) {
      expect(api).toMatch(new RegExp(`^easeemail_queue_jobs\\{queue="email-delivery",state="${state}",role="api"\\} \\d+`, 'm'));
    }
    expect(api).toMatch(/^easeemail_emails_accepted_total\{application="[0-9a-f-]{36}",role="api"\} [1-9]/m);
    expect(api).toMatch(/^easeemail_http_request_duration_seconds_count\{[^}]*method="POST",route="\/v1\/emails",status="202"\} [1-9]/m);
  });

  test('OpenAPI documents the routes from the validating schemas', async () => {
    const doc = (await request(s.base, undefined, 'GET', '/openapi.json')).body;
    for (const path of ['/v1/emails', '/v1/emails/batch', '/v1/emails/{id}', '/v1/emails/{id}/cancel', '/v1/templates', '/v1/templates/{idOrName}', '/v1/templates/{idOrName}/render']) {
      expect(doc.paths).toHaveProperty([path]);
    }
    expect(doc.paths['/v1/emails'].post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/SendEmail' });
    const send = doc.components.schemas.SendEmail;
    expect(send.required).toEqual(['to']);
    expect(send.properties.subject.pattern).toBeDefined(); // the CR/LF rule is in the contract
    expect(doc.components.schemas.Problem).toBeDefined();
  });
});

test('eventually gives up with a clear message', async () => {
  await expect(eventually(async () => undefined, 'nothing', 100)).rejects.toThrow(/timed out after 100 ms waiting for nothing/);
});
