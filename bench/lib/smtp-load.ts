/**
 * An SMTP load generator that behaves like a busy MTA handing mail to one MX, and costs little
 * itself: `connections` sessions at once, each sending its messages back to back (one in flight
 * per session, as MTAs do), MAIL FROM / RCPT TO / DATA pipelined when the server offers
 * PIPELINING (RFC 2920: the message waits for the 354), a new session after
 * `messagesPerConnection` messages. Messages are dot-stuffed before the clock starts, so the
 * client's own work during the run is writing bytes and reading replies: its CPU time per
 * message is reported next to the rate, to show it is not what limits the rate.
 */
import net from 'node:net';

export interface SmtpLoadMessage {
  /** Envelope sender; '' for the null reverse path of a DSN. */
  from: string;
  to: string[];
  raw: Buffer;
}

export interface SmtpLoadOptions {
  port: number;
  host?: string;
  connections: number;
  /** Messages a session sends before it says QUIT and a new one connects (default 100). */
  messagesPerConnection?: number;
}

export interface SmtpLoadResult {
  /** Messages answered 250 per second, over the whole run. */
  perSecond: number;
  accepted: number;
  /** Messages refused at any step, by the reply code. */
  refused: Record<number, number>;
  durationMs: number;
  sessions: number;
  /** CPU time (user + system) of this process during the run, per message. */
  clientCpuMsPerMessage: number;
}

interface Reply {
  code: number;
  text: string;
}

/** The message as it goes after DATA: dot-stuffed, ending with CRLF . CRLF. */
function dataOf(raw: Buffer): Buffer {
  const text = raw.toString('latin1').replace(/(^|\r?\n)\./g, '$1..');
  return Buffer.from(`${text}${text === '' || text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}

class Session {
  private buffer = '';
  private replies: Reply[] = [];
  private waiting: ((r: Reply) => void) | undefined;
  private failed: ((err: Error) => void) | undefined;
  pipelining = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static async open(host: string, port: number): Promise<Session> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const s = new Session(socket);
    const greeting = await s.next();
    if (greeting.code !== 220) throw new Error(`SMTP greeting: ${greeting.text}`);
    const ehlo = await s.command('EHLO load.bench.test');
    if (ehlo.code !== 250) throw new Error(`EHLO: ${ehlo.text}`);
    s.pipelining = /^250[ -]PIPELINING\b/m.test(ehlo.text);
    return s;
  }

  private onData(chunk: Buffer) {
    this.buffer += chunk.toString('latin1');
    for (;;) {
      // A reply ends with a line "NNN text" (no dash after the code).
      const m = /(?:^|\r\n)(\d{3})(?: [^\r\n]*)?\r\n/.exec(this.buffer);
      if (!m) return;
      const end = m.index + m[0].length;
      const reply = { code: Number(m[1]), text: this.buffer.slice(0, end) };
      this.buffer = this.buffer.slice(end);
      const w = this.waiting;
      if (w) {
        this.waiting = undefined;
        this.failed = undefined;
        w(reply);
      } else this.replies.push(reply);
    }
  }

  private fail(err: Error) {
    const f = this.failed;
    this.waiting = undefined;
    this.failed = undefined;
    f?.(err);
  }

  next(): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.socket.destroyed) return Promise.reject(new Error('connection closed'));
    return new Promise<Reply>((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
    });
  }

  command(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  /** One message; resolves with the reply that decided it (250, or the first refusal). */
  async send(from: string, to: string[], data: Buffer): Promise<Reply> {
    const commands = [`MAIL FROM:<${from}>`, ...to.map((r) => `RCPT TO:<${r}>`), 'DATA'];
    let replies: Reply[];
    if (this.pipelining) {
      this.socket.write(`${commands.join('\r\n')}\r\n`);
      replies = [];
      for (let i = 0; i < commands.length; i++) replies.push(await this.next());
    } else {
      replies = [];
      for (const c of commands) {
        const r = await this.command(c);
        replies.push(r);
        if (r.code >= 400) break;
      }
    }
    const dataReply = replies.length === commands.length ? replies[replies.length - 1] : undefined;
    if (dataReply?.code === 354) {
      this.socket.write(data);
      return this.next();
    }
    await this.command('RSET');
    return replies.find((r) => r.code >= 400) ?? replies[replies.length - 1];
  }

  async quit(): Promise<void> {
    if (!this.socket.destroyed) {
      await this.command('QUIT').catch(() => undefined);
      this.socket.destroy();
    }
  }
}

/** Sends every message once over `connections` concurrent sessions; resolves when all are answered. */
export async function sendSmtpLoad(messages: SmtpLoadMessage[], opts: SmtpLoadOptions): Promise<SmtpLoadResult> {
  const host = opts.host ?? '127.0.0.1';
  const perConnection = opts.messagesPerConnection ?? 100;
  const prepared = messages.map((m) => ({ from: m.from, to: m.to, data: dataOf(m.raw) }));
  const refused: Record<number, number> = {};
  let accepted = 0;
  let sessions = 0;
  let next = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (next < prepared.length) {
        const session = await Session.open(host, opts.port);
        sessions++;
        try {
          for (let k = 0; k < perConnection && next < prepared.length; k++) {
            const m = prepared[next++];
            const reply = await session.send(m.from, m.to, m.data);
            if (reply.code === 250) accepted++;
            else refused[reply.code] = (refused[reply.code] ?? 0) + 1;
          }
        } finally {
          await session.quit();
        }
      }
    }),
  );
  const durationMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return {
    perSecond: (accepted / durationMs) * 1000,
    accepted,
    refused,
    durationMs,
    sessions,
    clientCpuMsPerMessage: (cpu.user + cpu.system) / 1000 / Math.max(1, prepared.length),
  };
}
