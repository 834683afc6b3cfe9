/**
 * The inbound SMTP listener on its own (no database): relay refusal, size limits, per-connection
 * limits, STARTTLS, mail that is no mail, a failing store, and a graceful close. Loopback only.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../app/log';
import { MAX_RECIPIENTS, startInboundListener, type InboundEnvelope, type InboundListener, type InboundListenerOptions, type ListenerEvent } from '../../app/inbound/listener';
import { reportFixture } from '../fixtures/reports';
import { connectSmtp } from './smtp-client';

const DOMAIN = 'bounces.example.com';
const log = createLogger({ level: 'silent' });

interface Harness {
  listener: InboundListener;
  received: { envelope: InboundEnvelope; raw: Buffer }[];
  events: ListenerEvent[];
  sessions: () => number;
  failStore: (fail: boolean) => void;
}

async function start(overrides: Partial<InboundListenerOptions> = {}): Promise<Harness> {
  const received: Harness['received'] = [];
  const events: ListenerEvent[] = [];
  let sessions = 0;
  let fail = false;
  const listener = await startInboundListener({
    host: '127.0.0.1',
    port: 0,
    bounceDomain: DOMAIN,
    maxMessageBytes: 64 * 1024,
    maxConnections: 20,
    socketTimeoutMs: 10_000,
    closeTimeoutMs: 5_000,
    log,
    async onMessage(envelope, raw) {
      if (fail) throw new Error('database is down');
      received.push({ envelope, raw });
    },
    onEvent: (e) => events.push(e),
    onSessions: (d) => (sessions += d),
    ...overrides,
  });
  return { listener, received, events, sessions: () => sessions, failStore: (f) => (fail = f) };
}

describe('inbound listener', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await start();
  });
  afterEach(async () => {
    await h.listener.close();
  });

  test('is never a relay: recipients outside BOUNCE_DOMAIN get 550, its own get 250', async () => {
    const c = await connectSmtp(h.listener.port);
    expect(c.greeting.code).toBe(220);
    expect((await c.command('EHLO mta.example.net')).code).toBe(250);
    expect((await c.command('MAIL FROM:<>')).code).toBe(250);
    const relay = await c.command('RCPT TO:<victim@gmail.com>');
    expect(relay.code).toBe(550);
    expect(relay.text).toContain('5.7.1 relaying denied');
    expect((await c.command(`RCPT TO:<victim@sub.${DOMAIN}>`)).code).toBe(550);
    expect((await c.command(`RCPT TO:<bounces+x.y@${DOMAIN.toUpperCase()}>`)).code).toBe(250);
    await c.quit();
    expect(h.events).toEqual(['relay_denied', 'relay_denied']);
  });

  test('552 for a message over the limit, by SIZE or by DATA; the next session is served', async () => {
    const c = await connectSmtp(h.listener.port);
    await c.command('EHLO mta.example.net');
    const bySize = await c.command(`MAIL FROM:<> SIZE=${64 * 1024 + 1}`);
    expect(bySize.code).toBe(552);
    expect((await c.command('MAIL FROM:<>')).code).toBe(250);
    await c.command(`RCPT TO:<bounces+a.b@${DOMAIN}>`);
    const big = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(100);
    const reply = await c.data(big);
    expect(reply.code).toBe(552);
    expect(h.received).toHaveLength(0);
    // Same connection, next transaction: accepted.
    await c.command('MAIL FROM:<>');
    await c.command(`RCPT TO:<bounces+a.b@${DOMAIN}>`);
    expect((await c.data('Subject: small\r\n\r\nhello\r\n')).code).toBe(250);
    await c.quit();
    expect(h.received).toHaveLength(1);
    expect(h.events).toEqual(['too_large', 'accepted']);
  });

  test('0-byte, headers-only, malformed and binary messages are accepted and handed over; the listener keeps serving', async () => {
    const vars = { returnPath: `bounces+x.y@${DOMAIN}`, emailId: 'x' };
    const bodies = [Buffer.alloc(0), reportFixture('headers-only', vars), reportFixture('malformed', vars), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31) % 256))];
    for (const body of bodies) {
      const c = await connectSmtp(h.listener.port);
      await c.command('HELO mta.example.net');
      await c.command('MAIL FROM:<>');
      await c.command(`RCPT TO:<bounces+x.y@${DOMAIN}>`);
      expect((await c.data(body)).code).toBe(250);
      await c.quit();
    }
    expect(h.received.map((r) => r.raw.length)).toEqual([0, expect.any(Number), expect.any(Number), expect.any(Number)]);
    expect(h.received[1].raw.toString()).toContain('Subject: nothing below');
    expect(h.received[0].envelope).toMatchObject({ mailFrom: '', rcptTo: [`bounces+x.y@${DOMAIN}`], remoteAddress: '127.0.0.1' });
  });

  test('a session that breaks off mid-DATA does not stop the listener', async () => {
    const c = await connectSmtp(h.listener.port);
    await c.command('HELO x');
    await c.command('MAIL FROM:<>');
    await c.command(`RCPT TO:<bounces+x.y@${DOMAIN}>`);
    await c.command('DATA');
    await c.quit(); // QUIT inside DATA is just message text; the socket is then destroyed
    const next = await connectSmtp(h.listener.port);
    expect(next.greeting.code).toBe(220);
    await next.quit();
  });

  test(`more than ${MAX_RECIPIENTS} recipients: 452 for the rest`, async () => {
    const c = await connectSmtp(h.listener.port);
    await c.command('HELO x');
    await c.command('MAIL FROM:<>');
    for (let i = 0; i < MAX_RECIPIENTS; i++) expect((await c.command(`RCPT TO:<r${i}@${DOMAIN}>`)).code).toBe(250);
    expect((await c.command(`RCPT TO:<extra@${DOMAIN}>`)).code).toBe(452);
    await c.quit();
  });

  test('when storing fails the answer is 451, so the sending MTA retries', async () => {
    h.failStore(true);
    const c = await connectSmtp(h.listener.port);
    await c.command('HELO x');
    await c.command('MAIL FROM:<>');
    await c.command(`RCPT TO:<bounces+x.y@${DOMAIN}>`);
    expect((await c.data('Subject: x\r\n\r\ny\r\n')).code).toBe(451);
    await c.quit();
    expect(h.events).toEqual(['store_failed']);
  });

  test('close() lets a message in transfer finish, answers 421 to new commands and refuses new connections', async () => {
    const c = await connectSmtp(h.listener.port);
    await c.command('HELO x');
    await c.command('MAIL FROM:<>');
    await c.command(`RCPT TO:<bounces+x.y@${DOMAIN}>`);
    expect((await c.command('DATA')).code).toBe(354);
    c.write('Subject: last\r\n\r\nhalf of it');
    const closing = h.listener.close();
    await expect(connectSmtp(h.listener.port)).rejects.toThrow(/ECONNREFUSED/);
    c.write(' and the rest');
    expect((await c.finish()).code).toBe(250);
    expect((await c.command('MAIL FROM:<>')).code).toBe(421); // the sender retries this one later
    await c.quit();
    await closing;
    expect(h.received).toHaveLength(1);
  });
});

describe('inbound listener with STARTTLS', () => {
  test('offers STARTTLS with the configured certificate and accepts mail over it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'inbound-tls-'));
    const h = await (async () => {
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', `/CN=${DOMAIN}`], { stdio: 'ignore' });
        return await start({ tls: { cert: readFileSync(path.join(dir, 'cert.pem')), key: readFileSync(path.join(dir, 'key.pem')) } });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    })();
    try {
      const c = await connectSmtp(h.listener.port);
      expect((await c.command('EHLO mta.example.net')).text).toContain('STARTTLS');
      const secure = await c.startTls();
      expect(secure.getPeerCertificate().subject.CN).toBe(DOMAIN);
      await c.command('EHLO mta.example.net');
      await c.command('MAIL FROM:<>');
      await c.command(`RCPT TO:<bounces+x.y@${DOMAIN}>`);
      expect((await c.data('Subject: over tls\r\n\r\nyes\r\n')).code).toBe(250);
      await c.quit();
      expect(h.received[0].raw.toString()).toContain('over tls');
    } finally {
      await h.listener.close();
    }
  });
});
