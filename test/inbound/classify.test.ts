import { randomUUID } from 'node:crypto';
import { reportFixture, type ReportFixture } from '../fixtures/reports';
import { classifyMessage, parseFieldGroups } from '../../app/inbound/classify';

const emailId = randomUUID();
const returnPath = `bounces+${emailId}.abcdefghijklmnop@bounces.example.com`;
const classify = (name: ReportFixture) => classifyMessage(reportFixture(name, { returnPath, emailId }));

describe('delivery status notifications (RFC 3464)', () => {
  test.each([
    ['gmail-hard-bounce', 'no.such.user@gmail.com', '5.1.1', /^550-5\.1\.1 The email account that you tried to reach does not exist/],
    ['microsoft365-hard-bounce', 'JDoe@contoso.com', '5.1.10', /^550 5\.1\.10 RESOLVER\.ADR\.RecipientNotFound/],
    ['exim-hard-bounce', 'nobody@example.net', '5.0.0', /^550 5\.1\.1 <nobody@example\.net>: Recipient address rejected: User unknown$/],
    ['sendmail-hard-bounce', 'bob@example.com', '5.2.1', /^550 5\.2\.1 Mailbox disabled for this recipient$/],
    ['yahoo-hard-bounce', 'closed.account@yahoo.com', null, /^554: delivery error: dd This user doesn't have a yahoo\.com account/],
  ] as const)('%s: a hard bounce of %s', (fixture, recipient, status, diagnostic) => {
    const c = classify(fixture);
    if (c.kind !== 'delivery_status') throw new Error(`classified as ${c.kind}`);
    expect(c.recipients).toHaveLength(1);
    expect(c.recipients[0]).toMatchObject({ recipient, outcome: 'hard_bounce', action: 'failed', status });
    expect(c.recipients[0].diagnostic).toMatch(diagnostic);
    expect(c.original.emailId).toBe(emailId);
    expect(c.original.messageId).toBe(`<${emailId}@example.com>`);
  });

  test('postfix: one recipient failed, one delivered, each reported on its own', () => {
    const c = classify('postfix-hard-bounce');
    if (c.kind !== 'delivery_status') throw new Error(c.kind);
    expect(c.recipients.map((r) => [r.recipient, r.outcome, r.status])).toEqual([
      ['jane@example.com', 'hard_bounce', '5.1.1'],
      ['ok@example.com', 'delivered', '2.0.0'],
    ]);
    expect(c.recipients[0].diagnostic).toBe('550 5.1.1 <jane@example.com>: Recipient address rejected: User unknown in virtual mailbox table');
    expect(c.original.returnPath).toBe(returnPath);
    expect(c.reportId).toBe('<20261130160108.4B3A21C0E3@mail.example.com>');
  });

  test('postfix: a delay warning', () => {
    const c = classify('postfix-delayed');
    if (c.kind !== 'delivery_status') throw new Error(c.kind);
    expect(c.recipients).toEqual([
      { recipient: 'slow@example.org', originalRecipient: 'slow@example.org', outcome: 'delayed', action: 'delayed', status: '4.4.1', diagnostic: 'connect to mx.example.org[192.0.2.44]:25: Connection timed out' },
    ]);
  });

  test('failed with a 4.x.x status is a soft bounce; the same fields with 5.x.x a hard one', () => {
    const dsn = (status: string) =>
      Buffer.from(
        `From: MAILER-DAEMON@x.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n` +
          `Reporting-MTA: dns; x.example\r\n\r\nFinal-Recipient: rfc822; full@example.com\r\nAction: failed\r\nStatus: ${status}\r\n\r\n--b--\r\n`,
      );
    expect(classifyMessage(dsn('4.2.2'))).toMatchObject({ kind: 'delivery_status', recipients: [{ outcome: 'soft_bounce', status: '4.2.2' }] });
    expect(classifyMessage(dsn('5.2.2 (mailbox full)'))).toMatchObject({ kind: 'delivery_status', recipients: [{ outcome: 'hard_bounce', status: '5.2.2' }] });
  });

  test('field groups: folded values, blank-line separated', () => {
    expect(parseFieldGroups('A: 1\r\n\r\nB: two\r\n  lines\r\nC: 3\r\n').map((g) => Object.fromEntries(g))).toEqual([{ a: '1' }, { b: 'two lines', c: '3' }]);
  });
});

describe('feedback reports (RFC 5965)', () => {
  test('a generic ARF complaint names the recipient and the original', () => {
    const c = classify('arf-complaint');
    expect(c).toMatchObject({
      kind: 'complaint',
      feedbackType: 'abuse',
      recipient: 'complainer@example.net',
      original: { emailId, messageId: `<${emailId}@example.com>`, returnPath },
    });
  });

  test("Microsoft JMRP: no Original-Rcpt-To, the complainer comes from the original's headers", () => {
    expect(classify('microsoft-jmrp-complaint')).toMatchObject({ kind: 'complaint', recipient: 'reader@outlook.com', original: { emailId, returnPath } });
  });
});

describe('mail that is no report', () => {
  test.each([
    ['auto-reply', 'not_a_report'],
    ['malformed', 'malformed_report'],
    ['headers-only', 'not_a_report'],
  ] as const)('%s → unusable (%s)', (fixture, reason) => {
    expect(classify(fixture)).toMatchObject({ kind: 'unusable', reason });
  });

  test.each([
    ['0 bytes', Buffer.alloc(0), 'empty'],
    ['only blank lines', Buffer.from('\r\n\r\n'), 'empty'],
    ['binary noise', Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256)), 'not_a_report'],
    ['deeply nested multiparts', Buffer.from(`${'Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n'.repeat(500)}body`), 'not_a_report'],
  ])('%s → unusable, no exception', (_what, raw, reason) => {
    expect(classifyMessage(raw)).toMatchObject({ kind: 'unusable', reason });
  });
});
