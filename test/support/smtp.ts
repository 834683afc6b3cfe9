/**
 * A real SMTP server (smtp-server) on a loopback port for tests and benchmarks. It records every
 * accepted message (envelope, raw bytes, arrival time) and answers from a script, so a test can
 * say "421, 421, then 250" or "550":
 *
 *   const smtp = await startSmtpServer();
 *   smtp.script(['421 Try again later', '421 Try again later']);   // then the default 250
 *   ...
 *   const [msg] = await smtp.waitForMessages(1);
 *   msg.parsed().subject
 *
 * There is no mail parser among the dependencies, so `parseMessage` is a small MIME reader,
 * enough for what nodemailer writes: folded headers, RFC 2047 words, nested multiparts,
 * quoted-printable and base64.
 */
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

export interface SmtpEnvelope {
  mailFrom: string;
  rcptTo: string[];
}

export interface ParsedAttachment {
  filename: string | undefined;
  contentType: string;
  content: Buffer;
}

export interface ParsedMessage {
  /** Lower-case header name → every value, unfolded and decoded. */
  headers: Map<string, string[]>;
  header(name: string): string | undefined;
  subject: string | undefined;
  text: string | undefined;
  html: string | undefined;
  attachments: ParsedAttachment[];
}

export interface ReceivedMessage {
  envelope: SmtpEnvelope;
  raw: Buffer;
  /** Date.now() when the server answered 250 to DATA. */
  receivedAt: number;
  /** The X-EaseEmail-Id header (read cheaply, without parsing the whole message). */
  emailId: string | undefined;
  authUser: string | undefined;
  parsed(): ParsedMessage;
}

/** "421 Try later" → an error smtp-server sends as that reply; "250" or undefined → accept. */
export type ScriptedReply = string;

export interface TestSmtpServer {
  port: number;
  url: string;
  messages: ReceivedMessage[];
  /** Replies for the next messages, in order, at the end of DATA; after them every message gets 250. */
  script(replies: ScriptedReply[]): void;
  /** Reply to RCPT TO for one address (e.g. "550 No such user"); undefined clears it. */
  rejectRecipient(address: string, reply: string | undefined): void;
  /** Every DATA answer is delayed by this long (slows delivery down for tests about timing). */
  setDelay(ms: number): void;
  /** Replies sent at DATA so far (scripted failures and 250s), in order. */
  replies: string[];
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  reset(): void;
  close(): Promise<void>;
}

export interface SmtpServerSettings {
  /** Require AUTH PLAIN/LOGIN with these credentials. */
  auth?: { user: string; pass: string };
  /** Implicit TLS (smtps) with smtp-server's built-in self-signed certificate. */
  secure?: boolean;
  /** Offer STARTTLS (built-in self-signed certificate). Off by default. */
  starttls?: boolean;
  port?: number;
}

function replyError(reply: string): Error & { responseCode: number } {
  const m = /^(\d{3})\s*(.*)$/.exec(reply);
  if (!m) throw new Error(`scripted reply must start with a 3-digit code: ${reply}`);
  const err = new Error(m[2] || 'scripted failure') as Error & { responseCode: number };
  err.responseCode = Number(m[1]);
  return err;
}

export async function startSmtpServer(settings: SmtpServerSettings = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMessage[] = [];
  const replies: string[] = [];
  let scripted: ScriptedReply[] = [];
  let delayMs = 0;
  const rejected = new Map<string, string>();
  const waiters = new Set<() => void>();

  const options: SMTPServerOptions = {
    secure: settings.secure ?? false,
    authOptional: !settings.auth,
    disabledCommands: [...(settings.auth ? [] : ['AUTH']), ...(settings.starttls ? [] : ['STARTTLS'])],
    allowInsecureAuth: true,
    disableReverseLookup: true,
    logger: false,
    size: 50 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      if (settings.auth && auth.username === settings.auth.user && auth.password === settings.auth.pass) return callback(null, { user: auth.username });
      return callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, callback) {
      const reply = rejected.get(address.address.toLowerCase());
      if (reply) return callback(replyError(reply));
      callback();
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const answer = () => {
          const reply = scripted.shift();
          if (reply !== undefined && !reply.startsWith('2')) {
            replies.push(reply);
            return callback(replyError(reply));
          }
          replies.push('250');
          const raw = Buffer.concat(chunks);
          const headerEnd = raw.indexOf('\r\n\r\n');
          const head = raw.subarray(0, headerEnd === -1 ? raw.length : headerEnd).toString('latin1');
          const emailId = /^X-EaseEmail-Id:\s*(\S+)/im.exec(head)?.[1];
          let parsed: ParsedMessage | undefined;
          messages.push({
            envelope: {
              mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
            },
            raw,
            receivedAt: Date.now(),
            emailId,
            authUser: session.user as string | undefined,
            parsed: () => (parsed ??= parseMessage(raw)),
          });
          for (const w of waiters) w();
          callback(null, 'OK: queued');
        };
        if (delayMs > 0) setTimeout(answer, delayMs);
        else answer();
      });
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => undefined); // client resets are normal in retry tests
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(settings.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as { port: number }).port;
  const scheme = settings.secure ? 'smtps' : 'smtp';
  const auth = settings.auth ? `${encodeURIComponent(settings.auth.user)}:${encodeURIComponent(settings.auth.pass)}@` : '';

  return {
    port,
    url: `${scheme}://${auth}127.0.0.1:${port}`,
    messages,
    replies,
    script(list) {
      scripted = [...list];
    },
    rejectRecipient(address, reply) {
      if (reply === undefined) rejected.delete(address.toLowerCase());
      else rejected.set(address.toLowerCase(), reply);
    },
    setDelay(ms) {
      delayMs = ms;
    },
    async waitForMessages(count, timeoutMs = 15_000) {
      if (messages.length >= count) return messages.slice(0, count);
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (messages.length >= count) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SMTP server received ${messages.length} of ${count} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
      });
      return messages.slice(0, count);
    },
    reset() {
      messages.length = 0;
      replies.length = 0;
      scripted = [];
      rejected.clear();
      delayMs = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// --- a small MIME reader -------------------------------------------------------------------

function decodeQuotedPrintable(s: string): Buffer {
  const soft = s.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(soft.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes);
}

/** RFC 2047 encoded words (=?utf-8?Q?...?= and =?utf-8?B?...?=); adjacent words join without the space. */
function decodeWords(value: string): string {
  return value
    .replace(/(=\?[^?]+\?[QqBb]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B' ? Buffer.from(text, 'base64').toString('utf8') : decodeQuotedPrintable(text.replace(/_/g, ' ')).toString('utf8'),
    );
}

function parseHeaderBlock(block: string): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = Buffer.from(line.slice(colon + 1).trim(), 'latin1').toString('utf8');
    headers.set(name, [...(headers.get(name) ?? []), decodeWords(value)]);
  }
  return headers;
}

/** `text/plain; charset=utf-8; name="a b"` → value and parameters (RFC 2231 continuations joined). */
function parseParams(value: string): { value: string; params: Record<string, string> } {
  const [first, ...rest] = value.split(';');
  const params: Record<string, string> = {};
  const continued: Record<string, string[]> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq === -1) continue;
    const key = p.slice(0, eq).trim().toLowerCase();
    const raw = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    const m = /^([^*]+)\*(\d+)?\*?$/.exec(key);
    if (m) (continued[m[1]] ??= [])[Number(m[2] ?? 0)] = raw;
    else params[key] = raw;
  }
  for (const [key, parts] of Object.entries(continued)) {
    const joined = parts.join('');
    const ext = /^([^']*)'[^']*'(.*)$/.exec(joined);
    params[key] = ext ? decodeURIComponent(ext[2]) : joined;
  }
  return { value: first.trim().toLowerCase(), params };
}

interface Part {
  headers: Map<string, string[]>;
  body: string;
}

function splitPart(raw: string): Part {
  const end = raw.indexOf('\r\n\r\n');
  return end === -1 ? { headers: parseHeaderBlock(raw), body: '' } : { headers: parseHeaderBlock(raw.slice(0, end)), body: raw.slice(end + 4) };
}

function decodeBody(part: Part): Buffer {
  const cte = (part.headers.get('content-transfer-encoding')?.[0] ?? '7bit').toLowerCase();
  if (cte === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64');
  if (cte === 'quoted-printable') return decodeQuotedPrintable(part.body);
  return Buffer.from(part.body, 'latin1');
}

export function parseMessage(raw: Buffer): ParsedMessage {
  const top = splitPart(raw.toString('latin1'));
  const out: ParsedMessage = {
    headers: top.headers,
    header: (name) => top.headers.get(name.toLowerCase())?.[0],
    subject: top.headers.get('subject')?.[0],
    text: undefined,
    html: undefined,
    attachments: [],
  };
  const visit = (part: Part) => {
    const type = parseParams(part.headers.get('content-type')?.[0] ?? 'text/plain');
    if (type.value.startsWith('multipart/')) {
      const boundary = `--${type.params.boundary}`;
      const pieces = part.body.split(boundary).slice(1);
      for (const piece of pieces) {
        if (piece.startsWith('--')) break;
        visit(splitPart(piece.replace(/^\r\n/, '').replace(/\r\n$/, '')));
      }
      return;
    }
    const disposition = parseParams(part.headers.get('content-disposition')?.[0] ?? 'inline');
    const content = decodeBody(part);
    if (disposition.value === 'attachment') {
      out.attachments.push({ filename: disposition.params.filename ?? type.params.name, contentType: type.value, content });
    } else if (type.value === 'text/plain' && out.text === undefined) out.text = content.toString('utf8');
    else if (type.value === 'text/html' && out.html === undefined) out.html = content.toString('utf8');
    else out.attachments.push({ filename: disposition.params.filename ?? type.params.name, contentType: type.value, content });
  };
  visit(top);
  return out;
}
