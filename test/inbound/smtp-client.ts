/**
 * A bare SMTP client over a loopback socket: every command and reply is visible, so tests can
 * send what a well-behaved library never would (0-byte messages, broken MIME, oversize data,
 * relay attempts) and read the exact reply codes.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  code: number;
  text: string;
}

export interface RawSmtpClient {
  greeting: Reply;
  command(line: string): Promise<Reply>;
  /** DATA, then the message (dot-stuffed here), then the final reply. */
  data(raw: Buffer | string): Promise<Reply>;
  /** Raw bytes (e.g. half a message after DATA), then `finish` ends the message and reads the reply. */
  write(raw: string): void;
  finish(): Promise<Reply>;
  /** STARTTLS and a new EHLO on the encrypted socket. */
  startTls(): Promise<tls.TLSSocket>;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
  quit(): Promise<void>;
}

export async function connectSmtp(port: number): Promise<RawSmtpClient> {
  let socket: net.Socket = net.connect({ host: '127.0.0.1', port });
  let buffer = '';
  let waiting: ((r: Reply) => void) | undefined;
  const replies: Reply[] = [];
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    for (;;) {
      // A reply ends with a line "NNN text" (no dash after the code).
      const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buffer);
      if (!m) return;
      const end = m.index + m[0].length;
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end);
      const reply = { code: Number(m[2]), text: block.trim() };
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(reply);
      } else replies.push(reply);
    }
  };
  socket.on('data', onData);
  socket.on('error', () => undefined);
  const next = () =>
    new Promise<Reply>((resolve, reject) => {
      const queued = replies.shift();
      if (queued) return resolve(queued);
      const timer = setTimeout(() => reject(new Error('no SMTP reply within 10 s')), 10_000);
      waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      closed.then(() => {
        clearTimeout(timer);
        reject(new Error('connection closed'));
      });
    });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const greeting = await next();
  const client: RawSmtpClient = {
    greeting,
    closed,
    async command(line) {
      socket.write(`${line}\r\n`);
      return next();
    },
    async data(raw) {
      const start = await client.command('DATA');
      if (start.code !== 354) return start;
      const text = Buffer.isBuffer(raw) ? raw.toString('latin1') : raw;
      const stuffed = text.replace(/(^|\r\n)\./g, '$1..');
      socket.write(Buffer.from(`${stuffed}${stuffed === '' || stuffed.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1'));
      return next();
    },
    write(raw) {
      socket.write(Buffer.from(raw, 'latin1'));
    },
    async finish() {
      socket.write('\r\n.\r\n');
      return next();
    },
    async startTls() {
      const r = await client.command('STARTTLS');
      if (r.code !== 220) throw new Error(`STARTTLS refused: ${r.text}`);
      socket.removeListener('data', onData);
      const secure = tls.connect({ socket, rejectUnauthorized: false, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', () => resolve());
        secure.once('error', reject);
      });
      secure.on('data', onData);
      socket = secure;
      return secure;
    },
    async quit() {
      if (socket.destroyed) return;
      socket.write('QUIT\r\n');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, 2_000)))]);
      clearTimeout(timer);
      socket.destroy();
    },
  };
  return client;
}
