/**
 * The inbound role end to end without an MTA: emails sent through the worker (VERP envelope
 * sender) to the test SMTP server, then delivery reports in the big receivers' formats delivered
 * to the inbound listener over SMTP. What changes: timeline, status, suppression list, webhook
 * events; and what must not: forged or unusable reports, duplicates.
 */
import { reportFixture, type ReportFixture } from '../fixtures/reports';
import { BOUNCE_DOMAIN, eventually, startDeliverabilityStack, type DeliverabilityStack } from './stack';

let s: DeliverabilityStack;

beforeAll(async () => {
  s = await startDeliverabilityStack('inbound_reports');
});
afterAll(async () => {
  await s?.stop();
});

/** An email to `to`, sent (the SMTP server took it with our return path). */
async function sentEmail(to: string | string[]): Promise<{ id: string; returnPath: string }> {
  const id = await s.send({ from: 'Shop <shop@example.com>', to, subject: 'Your order shipped', text: 'It is on its way.' });
  await s.email(id, (e) => e.status === 'sent', 'sent');
  const message = await eventually(async () => s.smtp!.messages.find((m) => m.emailId === id), `the SMTP server to receive ${id}`);
  return { id, returnPath: message.envelope.mailFrom };
}

async function suppressions(): Promise<{ address: string; reason: string; emailId: string | null }[]> {
  return (await s.call('GET', '/v1/suppressions?limit=100')).body.data;
}

test('the worker sends with the VERP return path as MAIL FROM; the From header stays the sender', async () => {
  const { id, returnPath } = await sentEmail('first@example.org');
  expect(returnPath).toBe(s.verp.returnPath(id));
  expect(returnPath).toMatch(new RegExp(`^bounces\\+${id}\\.[a-z2-7]{16}@${BOUNCE_DOMAIN.replace(/\./g, '\\.')}$`));
  const message = s.smtp!.messages.find((m) => m.emailId === id)!;
  expect(message.parsed().header('from')).toMatch(/^"?Shop"? <shop@example\.com>$/);
});

describe.each([
  ['gmail-hard-bounce', 'no.such.user@gmail.com', '5.1.1'],
  ['microsoft365-hard-bounce', 'JDoe@contoso.com', '5.1.10'],
  ['yahoo-hard-bounce', 'closed.account@yahoo.com', null],
  ['exim-hard-bounce', 'nobody@example.net', '5.0.0'],
  ['sendmail-hard-bounce', 'bob@example.com', '5.2.1'],
] as const)('%s', (fixture, recipient, status) => {
  test('bounces the email, suppresses the address, emits email.bounced once; the same DSN again changes nothing', async () => {
    const { id, returnPath } = await sentEmail(recipient);
    const dsn = reportFixture(fixture as ReportFixture, { returnPath, emailId: id });
    expect((await s.deliverReport([returnPath], dsn)).code).toBe(250);
    const email = await s.email(id, (e) => e.status === 'bounced', 'bounced');
    expect(email.reports).toEqual([{ kind: 'hard_bounce', recipient, status, diagnostic: expect.any(String), receivedAt: expect.any(String) }]);
    expect(await suppressions()).toContainEqual(expect.objectContaining({ address: recipient, reason: 'hard_bounce', emailId: id }));
    const event = await s.waitForEvent('email.bounced', (d) => d.emailId === id);
    expect(event.data).toMatchObject({ status: 'bounced', report: { kind: 'hard_bounce', recipient, status } });

    // The same DSN a second time: 250 (the MTA must not retry), and nothing new.
    expect((await s.deliverReport([returnPath], dsn)).code).toBe(250);
    // The listener answers 250 only after the report's transaction committed, so the database is final here.
    const again = await s.call('GET', `/v1/emails/${id}`);
    expect(again.body.reports).toHaveLength(1);
    expect(await s.t.db.event.count({ where: { type: 'email.bounced', payload: { path: ['emailId'], equals: id } } })).toBe(1);
  });
});

test('DSNs over many sessions at once (as MTAs deliver them): each email bounced, suppressed and announced once', async () => {
  const emails = await Promise.all(Array.from({ length: 10 }, (_, i) => sentEmail(`busy${i}@example.org`)));
  const dsns = emails.map(({ id, returnPath }, i) =>
    Buffer.from(reportFixture('exim-hard-bounce', { returnPath, emailId: id }).toString('latin1').replace(/nobody@example\.net/g, `busy${i}@example.org`), 'latin1'),
  );
  // Both copies of every DSN at the same time: the duplicates share batches with the originals.
  const replies = await Promise.all([...emails, ...emails].map(({ returnPath }, k) => s.deliverReport([returnPath], dsns[k % emails.length])));
  expect(replies.map((r) => r.code)).toEqual(replies.map(() => 250));
  const list = await suppressions();
  for (const [i, { id }] of emails.entries()) {
    const email = await s.call('GET', `/v1/emails/${id}`);
    expect(email.body).toMatchObject({ status: 'bounced', reports: [{ kind: 'hard_bounce', recipient: `busy${i}@example.org` }] });
    expect(list).toContainEqual(expect.objectContaining({ address: `busy${i}@example.org`, reason: 'hard_bounce', emailId: id }));
    await s.waitForEvent('email.bounced', (d) => d.emailId === id);
  }
  const events = await s.t.db.event.findMany({ where: { type: 'email.bounced', OR: emails.map(({ id }) => ({ payload: { path: ['emailId'], equals: id } })) } });
  expect(events).toHaveLength(emails.length);
});

test('a partial bounce (one of two recipients) is recorded and keeps the email sent', async () => {
  const { id, returnPath } = await sentEmail(['jane@example.com', 'ok@example.com']);
  expect((await s.deliverReport([returnPath], reportFixture('postfix-hard-bounce', { returnPath, emailId: id }))).code).toBe(250);
  const email = await s.email(id, (e) => e.reports.length === 2, 'two reports');
  expect(email.status).toBe('sent');
  expect(email.reports.map((r: { kind: string; recipient: string }) => [r.kind, r.recipient])).toEqual([
    ['hard_bounce', 'jane@example.com'],
    ['delivered', 'ok@example.com'],
  ]);
  const list = await suppressions();
  expect(list).toContainEqual(expect.objectContaining({ address: 'jane@example.com', reason: 'hard_bounce' }));
  expect(list.find((x) => x.address === 'ok@example.com')).toBeUndefined();
  expect((await s.waitForEvent('email.bounced', (d) => d.emailId === id)).data).toMatchObject({ status: 'sent', report: { recipient: 'jane@example.com' } });
});

test('a delay warning is recorded and emits email.delivery_delayed; the email stays sent', async () => {
  const { id, returnPath } = await sentEmail('slow@example.org');
  expect((await s.deliverReport([returnPath], reportFixture('postfix-delayed', { returnPath, emailId: id }))).code).toBe(250);
  const event = await s.waitForEvent('email.delivery_delayed', (d) => d.emailId === id);
  expect(event.data.report).toMatchObject({ kind: 'delayed', recipient: 'slow@example.org', status: '4.4.1' });
  const email = await s.email(id, (e) => e.reports.length === 1, 'the delay on the timeline');
  expect(email.status).toBe('sent');
  expect(await suppressions()).not.toContainEqual(expect.objectContaining({ address: 'slow@example.org' }));
});

test.each(['arf-complaint', 'microsoft-jmrp-complaint'] as const)('%s: a complaint suppresses the address and emits email.complained', async (fixture) => {
  const recipient = fixture === 'arf-complaint' ? 'complainer@example.net' : 'reader@outlook.com';
  const { id, returnPath } = await sentEmail(recipient);
  expect((await s.deliverReport([returnPath], reportFixture(fixture, { returnPath, emailId: id }))).code).toBe(250);
  const event = await s.waitForEvent('email.complained', (d) => d.emailId === id);
  expect(event.data.report).toMatchObject({ kind: 'complaint', recipient, diagnostic: 'feedback type: abuse' });
  expect(await suppressions()).toContainEqual(expect.objectContaining({ address: recipient, reason: 'complaint', emailId: id }));
});

test('a complaint sent to a feedback address (no return path) is matched by the original X-EaseEmail-Id and Message-ID', async () => {
  const { id, returnPath } = await sentEmail('fbl-reader@example.net');
  const arf = reportFixture('arf-complaint', { returnPath: 'fbl@elsewhere.example', emailId: id }).toString('latin1').replace(/complainer@example\.net/g, 'fbl-reader@example.net');
  expect(returnPath).toContain(BOUNCE_DOMAIN);
  expect((await s.deliverReport([`postmaster@${BOUNCE_DOMAIN}`], Buffer.from(arf, 'latin1'))).code).toBe(250);
  await s.waitForEvent('email.complained', (d) => d.emailId === id);
});

describe('reports that change nothing', () => {
  /** The listener answered 250 after storing, so the row is there now. */
  async function unchanged(id: string, reason: string, rcpt: string) {
    const row = await s.t.db.inboundMessage.findFirst({ where: { reason, rcptTo: { has: rcpt } } });
    expect(row).not.toBeNull();
    const email = await s.call('GET', `/v1/emails/${id}`);
    expect(email.body).toMatchObject({ status: 'sent', reports: [] });
    return row;
  }

  test('a forged tag: stored with reason bad_tag; no status, suppression or event', async () => {
    const { id, returnPath } = await sentEmail('victim@example.org');
    const forged = returnPath.replace(/\.([a-z2-7]{16})@/, (_, tag: string) => `.${tag.slice(0, 15)}${tag.endsWith('a') ? 'b' : 'a'}@`);
    expect((await s.deliverReport([forged], reportFixture('exim-hard-bounce', { returnPath: forged, emailId: id }))).code).toBe(250);
    const row = await unchanged(id, 'bad_tag', forged);
    expect(row!.applicationId).toBeNull();
    expect(await suppressions()).not.toContainEqual(expect.objectContaining({ address: 'nobody@example.net', emailId: id }));
    expect(await s.t.db.event.count({ where: { payload: { path: ['emailId'], equals: id }, type: { not: 'email.sent' } } })).toBe(0);
  });

  test('a missing tag (plain address at the bounce domain): stored with reason no_return_path', async () => {
    const { id } = await sentEmail('victim2@example.org');
    const plain = `bounces@${BOUNCE_DOMAIN}`;
    expect((await s.deliverReport([plain], reportFixture('gmail-hard-bounce', { returnPath: plain, emailId: id }))).code).toBe(250);
    await unchanged(id, 'no_return_path', plain);
  });

  test.each([
    ['auto-reply', 'not_a_report'],
    ['malformed', 'malformed_report'],
    ['headers-only', 'not_a_report'],
  ] as const)('%s: accepted (250), stored with reason %s, counted', async (fixture, reason) => {
    const { id, returnPath } = await sentEmail(`${fixture}@example.org`);
    expect((await s.deliverReport([returnPath], reportFixture(fixture, { returnPath, emailId: id }))).code).toBe(250);
    const row = await unchanged(id, reason, returnPath);
    expect(row!.sample).toContain('From:');
    const metrics = await (await fetch(`http://127.0.0.1:${s.inbound.healthPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`easeemail_inbound_messages_total\\{result="${reason}"[^}]*\\} [1-9]`));
  });

  test('a 0-byte message: 250, stored as empty, and the listener serves the next message', async () => {
    const { id, returnPath } = await sentEmail('zero@example.org');
    expect((await s.deliverReport([returnPath], Buffer.alloc(0))).code).toBe(250);
    await unchanged(id, 'empty', returnPath);
    const next = await sentEmail('after-zero@example.org');
    const dsn = reportFixture('exim-hard-bounce', { returnPath: next.returnPath, emailId: next.id }).toString('latin1').replace(/nobody@example\.net/g, 'after-zero@example.org');
    expect((await s.deliverReport([next.returnPath], Buffer.from(dsn, 'latin1'))).code).toBe(250);
    await s.email(next.id, (e) => e.status === 'bounced', 'bounced');
  });

  test('relay attempts get 550 and nothing is stored', async () => {
    const before = await s.t.db.inboundMessage.count();
    const reply = await s.deliverReport(['someone@gmail.com'], Buffer.from('Subject: relay me\r\n\r\nplease\r\n'));
    expect(reply.code).toBe(550);
    expect(await s.t.db.inboundMessage.count()).toBe(before);
  });
});
