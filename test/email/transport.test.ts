/**
 * The SMTP transport against real smtp-server instances: smtps (implicit TLS), STARTTLS required,
 * authentication, and how failures are classified (retry or give up).
 */
import { composeMail, type OutgoingMessage } from '../../app/email/message';
import { classifySmtpError, createSmtpTransport, smtpPoolOptions, type MailTransport } from '../../app/email/transport';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp';

const servers: TestSmtpServer[] = [];
const transports: MailTransport[] = [];

afterAll(async () => {
  for (const t of transports) t.close();
  await Promise.all(servers.map((s) => s.close()));
});

async function server(settings: Parameters<typeof startSmtpServer>[0]) {
  const s = await startSmtpServer(settings);
  servers.push(s);
  return s;
}

function transport(url: string) {
  const t = createSmtpTransport({ smtpUrl: url, smtpTimeoutMs: 5_000, smtpPoolSize: 2 });
  transports.push(t);
  return t;
}

let message: OutgoingMessage;
beforeAll(async () => {
  message = await composeMail({ from: 'a@example.com', to: 'b@example.com', subject: 'transport', text: 'hello' });
});

test('smtps:// with authentication, over implicit TLS', async () => {
  const s = await server({ secure: true, auth: { user: 'mailer', pass: 'p@ss:word' } });
  expect(s.url).toMatch(/^smtps:\/\/mailer:p%40ss%3Aword@127\.0\.0\.1:\d+$/);
  const info = await transport(`${s.url}?rejectUnauthorized=false`).send(message);
  expect(info.response).toMatch(/^250/);
  const [msg] = await s.waitForMessages(1);
  expect(msg.authUser).toBe('mailer');
  expect(msg.parsed().subject).toBe('transport');
  // The composed buffer goes out as it is: its Message-ID, and the envelope derived from the headers.
  expect(msg.parsed().header('message-id')).toBe(message.messageId);
  expect(msg.envelope).toEqual({ mailFrom: 'a@example.com', rcptTo: ['b@example.com'] });
  expect(info.messageId).toBe(message.messageId);
  expect(info.accepted).toEqual(['b@example.com']);
});

test('smtp:// with requireTLS=true upgrades with STARTTLS, and refuses a server without it', async () => {
  const tls = await server({ starttls: true, auth: { user: 'u', pass: 'p' } });
  expect((await transport(`${tls.url}?requireTLS=true&rejectUnauthorized=false`).send(message)).response).toMatch(/^250/);

  const plain = await server({});
  const err = await transport(`${plain.url}?requireTLS=true`).send(message).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(classifySmtpError(err).retryable).toBe(true); // an operator problem: keep the email, retry later
});

test('a wrong password is retried (the operator can fix it), not failed', async () => {
  const s = await server({ auth: { user: 'u', pass: 'right' } });
  const err = await transport(s.url.replace('u:right@', 'u:wrong@')).send(message).catch((e: unknown) => e);
  const failure = classifySmtpError(err);
  expect(failure.retryable).toBe(true);
  expect(failure.message).toMatch(/535/);
  expect(failure.message).not.toMatch(/wrong/); // no credentials in errors
});

test('a refused connection is retryable', async () => {
  const s = await server({});
  const url = s.url;
  await s.close();
  servers.splice(servers.indexOf(s), 1);
  const err = await transport(url).send(message).catch((e: unknown) => e);
  expect(classifySmtpError(err)).toMatchObject({ retryable: true, response: null, message: expect.stringMatching(/ECONNREFUSED|ECONNECTION|ESOCKET/) });
});

test('classification of SMTP replies', () => {
  expect(classifySmtpError({ responseCode: 421, response: '421 busy', command: 'DATA' })).toMatchObject({ retryable: true, response: '421 busy' });
  expect(classifySmtpError({ responseCode: 451, response: '451 later' })).toMatchObject({ retryable: true });
  expect(classifySmtpError({ responseCode: 550, response: '550 no such user', command: 'RCPT TO' })).toEqual({
    retryable: false,
    response: '550 no such user',
    message: 'rejected by the SMTP server (RCPT TO): 550 no such user',
  });
  expect(classifySmtpError({ code: 'EAUTH', responseCode: 535, response: '535 auth failed' })).toMatchObject({ retryable: true });
  expect(classifySmtpError({ code: 'EENVELOPE', message: 'No recipients defined' })).toMatchObject({ retryable: false });
  expect(classifySmtpError({ code: 'ETIMEDOUT', message: 'Greeting never received' })).toMatchObject({ retryable: true });
  expect(classifySmtpError(new Error('boom'))).toMatchObject({ retryable: true });
});

test('SMTP_URL options are parsed, and unknown ones refused', () => {
  const o = smtpPoolOptions({ smtpUrl: 'smtp://user%40x:p%2Fw@mail.example.com:2525?requireTLS=true&name=worker.example.com', smtpTimeoutMs: 1234, smtpPoolSize: 7 });
  expect(o).toMatchObject({
    pool: true,
    host: 'mail.example.com',
    port: 2525,
    secure: false,
    auth: { user: 'user@x', pass: 'p/w' },
    requireTLS: true,
    ignoreTLS: false,
    name: 'worker.example.com',
    maxConnections: 7,
    connectionTimeout: 1234,
    socketTimeout: 1234,
  });
  expect(smtpPoolOptions({ smtpUrl: 'smtps://mail.example.com', smtpTimeoutMs: 1, smtpPoolSize: 1 })).toMatchObject({ secure: true, port: 465, auth: undefined });
  expect(smtpPoolOptions({ smtpUrl: 'smtp://[::1]', smtpTimeoutMs: 1, smtpPoolSize: 1 })).toMatchObject({ host: '::1', port: 587 });
  expect(() => smtpPoolOptions({ smtpUrl: 'smtp://h?tls=maybe', smtpTimeoutMs: 1, smtpPoolSize: 1 })).toThrow(/unknown or invalid option "tls"/);
  expect(() => smtpPoolOptions({ smtpUrl: 'smtp://h?requireTLS=yes', smtpTimeoutMs: 1, smtpPoolSize: 1 })).toThrow(/requireTLS/);
});
