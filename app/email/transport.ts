/**
 * SMTP through nodemailer's pooled transport, configured from SMTP_URL:
 *
 *   smtp://[user:pass@]host[:port][?requireTLS=true|ignoreTLS=true][&rejectUnauthorized=false][&name=ehlo.host]
 *   smtps://[user:pass@]host[:port]     (implicit TLS, port 465 by default)
 *
 * smtp:// upgrades with STARTTLS whenever the server offers it; requireTLS=true refuses to send
 * without it, ignoreTLS=true never tries. Connect, greeting and socket timeouts are SMTP_TIMEOUT_MS.
 *
 * `classifySmtpError` decides retry or give up: a 5xx reply to the message (MAIL FROM, RCPT TO,
 * DATA) is permanent; a 4xx reply, and connection, TLS, timeout and authentication failures (the
 * server's or the operator's problem, not the message's) are retried.
 */
import net from 'node:net';
import SMTPPoolTransport from 'nodemailer/lib/smtp-pool';
import type { OutgoingMessage } from './message';

export interface SmtpSettings {
  smtpUrl: string;
  smtpTimeoutMs: number;
  /** Pooled connections (nodemailer maxConnections). */
  smtpPoolSize: number;
}

export interface SentInfo {
  messageId?: string;
  response: string;
  accepted: unknown[];
  rejected: unknown[];
}

export interface MailTransport {
  send(message: OutgoingMessage): Promise<SentInfo>;
  close(): void;
}

const FLAGS = ['requireTLS', 'ignoreTLS', 'rejectUnauthorized'] as const;

type SocketCallback = (err: Error | null, socketOptions?: { connection: net.Socket }) => void;

/**
 * Opens the TCP connection for nodemailer with Nagle's algorithm off. nodemailer leaves it on,
 * and SMTP's small command/reply exchanges then wait for delayed ACKs (40 ms a message on Linux
 * loopback, measured: ~95 vs ~735 messages/s over 5 pooled connections). TLS (smtps, STARTTLS)
 * is layered on this socket by nodemailer as usual.
 */
function noDelaySocket(host: string, port: number, timeoutMs: number) {
  return (_options: unknown, callback: SocketCallback) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.setTimeout(timeoutMs);
    const fail = (err: Error) => {
      socket.destroy();
      callback(err);
    };
    const onTimeout = () => fail(Object.assign(new Error(`connection to ${host}:${port} timed out`), { code: 'ETIMEDOUT' }));
    socket.once('error', fail);
    socket.once('timeout', onTimeout);
    socket.once('connect', () => {
      socket.removeListener('error', fail);
      socket.removeListener('timeout', onTimeout);
      socket.setTimeout(0); // nodemailer runs its own greeting and socket timeouts from here
      callback(null, { connection: socket });
    });
  };
}

export function smtpPoolOptions(settings: SmtpSettings): SMTPPoolTransport.Options {
  const url = new URL(settings.smtpUrl);
  const secure = url.protocol === 'smtps:';
  const flags: Partial<Record<(typeof FLAGS)[number], boolean>> = {};
  let name: string | undefined;
  for (const [key, value] of url.searchParams) {
    if (key === 'name') name = value;
    else if ((FLAGS as readonly string[]).includes(key) && (value === 'true' || value === 'false')) flags[key as (typeof FLAGS)[number]] = value === 'true';
    else throw new Error(`SMTP_URL: unknown or invalid option "${key}" (known: ${[...FLAGS, 'name'].join(', ')}; flags take true or false)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : secure ? 465 : 587;
  return {
    pool: true,
    host,
    port,
    secure,
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    requireTLS: flags.requireTLS ?? false,
    ignoreTLS: flags.ignoreTLS ?? false,
    tls: { rejectUnauthorized: flags.rejectUnauthorized ?? true },
    name,
    maxConnections: settings.smtpPoolSize,
    // Reuse connections for many messages: a new SMTP session per 100 messages costs throughput.
    maxMessages: 10_000,
    connectionTimeout: settings.smtpTimeoutMs,
    greetingTimeout: settings.smtpTimeoutMs,
    socketTimeout: settings.smtpTimeoutMs,
    dnsTimeout: settings.smtpTimeoutMs,
    logger: false,
    debug: false,
    getSocket: noDelaySocket(host, port, settings.smtpTimeoutMs),
  } as SMTPPoolTransport.Options;
}

/**
 * The message is handed to the pool as nodemailer's transport contract describes it (`send(mail,
 * callback)`, `mail.message` answering getEnvelope, messageId and createReadStream), with the
 * already-built buffer as the stream: `sendMail` would compile the raw message into a MIME tree
 * again and stream it back out, which cost about a third of the worker's nodemailer time
 * (CPU profile of bench:email's delivery).
 */
export function createSmtpTransport(settings: SmtpSettings): MailTransport {
  const pool = new SMTPPoolTransport(smtpPoolOptions(settings));
  return {
    send: (message) =>
      new Promise<SentInfo>((resolve, reject) => {
        const mail = {
          data: {},
          message: {
            getEnvelope: () => ({ from: message.envelope.from, to: [...message.envelope.to] }),
            messageId: () => message.messageId,
            createReadStream: () => message.raw,
            getHeader: (name: string) => (name.toLowerCase() === 'message-id' ? message.messageId : undefined),
          },
        };
        pool.send(mail as unknown as Parameters<SMTPPoolTransport['send']>[0], (err, info) => (err ? reject(err) : resolve(info as SentInfo)));
      }),
    close: () => pool.close(),
  };
}

export interface SmtpFailure {
  retryable: boolean;
  /** The server's reply line, when there was one. */
  response: string | null;
  /** A short description, without credentials. */
  message: string;
}

interface NodemailerError {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
}

/** Failures of the session rather than of the message: the server or our settings, not the email. */
const SESSION_ERRORS = new Set(['EAUTH', 'ETLS', 'ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'EPROTOCOL', 'ECONNREFUSED']);

export function classifySmtpError(err: unknown): SmtpFailure {
  const e = (err ?? {}) as NodemailerError;
  const response = typeof e.response === 'string' ? e.response.slice(0, 1000) : null;
  const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const where = e.command ? ` (${e.command})` : '';
  const session = e.code !== undefined && SESSION_ERRORS.has(e.code);
  if (!session && code !== undefined && code >= 500 && code < 600) {
    return { retryable: false, response, message: `rejected by the SMTP server${where}: ${response ?? code}` };
  }
  if (code === undefined && (e.code === 'EENVELOPE' || e.code === 'EMESSAGE')) {
    // Refused before talking to the server (bad envelope or message): retrying cannot help.
    return { retryable: false, response, message: `${e.code}: ${e.message ?? 'invalid message'}` };
  }
  const what = code !== undefined ? `SMTP ${code}${where}${e.code ? ` ${e.code}` : ''}: ${response ?? ''}` : `${e.code ?? 'error'}${where}: ${e.message ?? String(err)}`;
  return { retryable: true, response, message: what.slice(0, 1000) };
}
