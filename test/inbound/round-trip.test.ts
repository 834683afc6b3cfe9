/**
 * The whole loop with a real MTA (Exim on loopback, test/inbound/exim.ts): the worker hands an
 * email to Exim for an address Exim refuses; Exim writes its own DSN to our VERP return path and
 * delivers it to the inbound role, which bounces the email, emits email.bounced to a webhook
 * receiver and suppresses the address; a second email to it ends `suppressed` with no SMTP
 * attempt. Also Exim's own delay warning, and an ARF complaint that Exim carries to the listener.
 */
import nodemailer from 'nodemailer';
import { reportFixture } from '../fixtures/reports';
import { startExim, type Exim } from './exim';
import { BOUNCE_DOMAIN, eventually, startDeliverabilityStack, type DeliverabilityStack } from './stack';

let s: DeliverabilityStack;
let exim: Exim;

beforeAll(async () => {
  s = await startDeliverabilityStack('inbound_mta', {
    // Exim's delay warning needs the message to stay deferred for a couple of queue runs.
    mta: async (inboundPort) => {
      exim = await startExim({ inboundPort, bounceDomain: BOUNCE_DOMAIN, delayWarningSeconds: 2 });
      return { url: `smtp://127.0.0.1:${exim.port}?ignoreTLS=true`, stop: () => exim.stop() };
    },
  });
});
afterAll(async () => {
  await s?.stop();
});

/** Lines of Exim's log about messages it received for `address` ("<=" arrival lines name the envelope sender; "=>"/"**" the recipient). */
function eximMentions(address: string): string[] {
  return exim.log().split('\n').filter((l) => l.includes(address));
}

test('a hard bounce from the MTA bounces the email, notifies, suppresses; the next email to the address is not sent', async () => {
  const to = 'bounce-me@dest.test';
  const first = await s.send({ from: 'Shop <shop@example.com>', to, subject: 'Your order shipped', text: 'It is on its way.' });
  const bounced = await s.email(first, (e) => e.status === 'bounced', 'bounced by Exim\'s DSN', 30_000).catch((err) => {
    throw new Error(`${err.message}\nExim log:\n${exim.log()}`);
  });
  expect(bounced.attempts).toHaveLength(1);
  expect(bounced.attempts[0]).toMatchObject({ outcome: 'sent', suppressedRecipients: [] });
  expect(bounced.reports).toEqual([{ kind: 'hard_bounce', recipient: to, status: '5.0.0', diagnostic: null, receivedAt: expect.any(String) }]);
  // Exim saw our VERP return path as the envelope sender, and delivered its DSN back to it.
  const returnPath = s.verp.returnPath(first);
  expect(exim.log()).toContain(`<= ${returnPath}`);
  // Exim logs its delivery after our 250, so the line may trail the status by a moment.
  await eventually(async () => (new RegExp(`=> ${returnPath.replace(/[.+]/g, '\\$&')} R=reports_home`).test(exim.log()) ? true : undefined), "Exim's log of the DSN's delivery");

  const event = await s.waitForEvent('email.bounced', (d) => d.emailId === first, 30_000);
  expect(event.data).toMatchObject({ status: 'bounced', to: [to], report: { kind: 'hard_bounce', recipient: to } });
  const list = await s.call('GET', '/v1/suppressions?reason=hard_bounce');
  expect(list.body.data).toContainEqual(expect.objectContaining({ address: to, reason: 'hard_bounce', emailId: first }));

  const arrivalsBefore = eximMentions(to).length;
  const second = await s.send({ from: 'Shop <shop@example.com>', to, subject: 'Another order', text: 'Also on its way.' });
  const suppressed = await s.email(second, (e) => e.status === 'suppressed', 'suppressed');
  expect(suppressed.attempts).toEqual([]);
  expect(suppressed.attemptCount).toBe(0);
  expect((await s.waitForEvent('email.suppressed', (d) => d.emailId === second)).data).toMatchObject({ status: 'suppressed', suppressedRecipients: [to] });
  // No SMTP attempt: the email reached its final state without Exim hearing of it.
  expect(eximMentions(to).length).toBe(arrivalsBefore);
  expect(exim.log()).not.toContain(`<= ${s.verp.returnPath(second)}`);
});

test("the MTA's delay warning is recorded as delayed and emits email.delivery_delayed", async () => {
  const to = 'delay-me@dest.test';
  const id = await s.send({ from: 'Shop <shop@example.com>', to, subject: 'Slow one', text: 'Eventually.' });
  const event = await s.waitForEvent('email.delivery_delayed', (d) => d.emailId === id, 40_000).catch((err) => {
    throw new Error(`${err.message}\nExim log:\n${exim.log()}`);
  });
  expect(event.data.report).toMatchObject({ kind: 'delayed', recipient: to, status: '4.0.0' });
  const email = await s.email(id, (e) => e.reports.some((r: { kind: string }) => r.kind === 'delayed'), 'the delay on the timeline');
  expect(email.status).toBe('sent');
});

test('an ARF complaint carried by the MTA suppresses the complainer and emits email.complained', async () => {
  const to = 'complainer@example.net';
  const id = await s.send({ from: 'Shop <shop@example.com>', to, subject: 'Your order shipped', text: 'It is on its way.' });
  await s.email(id, (e) => e.status === 'sent', 'sent');
  const returnPath = s.verp.returnPath(id);
  // A feedback loop's report, submitted to Exim like any mail for the return path.
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: exim.port, ignoreTLS: true });
  try {
    await transport.sendMail({ envelope: { from: 'fbl@mail.example.net', to: [returnPath] }, raw: reportFixture('arf-complaint', { returnPath, emailId: id }) });
  } finally {
    transport.close();
  }
  const event = await s.waitForEvent('email.complained', (d) => d.emailId === id, 30_000);
  expect(event.data.report).toMatchObject({ kind: 'complaint', recipient: to });
  const list = await eventually(async () => {
    const res = await s.call('GET', '/v1/suppressions?reason=complaint');
    return res.body.data.length > 0 ? res.body.data : undefined;
  }, 'the complaint on the list');
  expect(list).toContainEqual(expect.objectContaining({ address: to, reason: 'complaint', emailId: id }));
});
