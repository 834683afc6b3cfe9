/**
 * The inbound SMTP listener (smtp-server): where delivery reports for BOUNCE_DOMAIN arrive.
 *
 * - It is never a relay: RCPT TO outside BOUNCE_DOMAIN gets 550 5.7.1 (relaying denied).
 * - Size: SIZE is advertised; MAIL FROM with a larger SIZE and a DATA that grows past
 *   INBOUND_MAX_MESSAGE_BYTES get 552 5.3.4 (the body is read and dropped, never buffered).
 * - Per connection: at most MAX_RECIPIENTS recipients a message (452 past it, RFC 5321 4.5.3.1.8),
 *   MAX_MESSAGES_PER_SESSION messages, INBOUND_SOCKET_TIMEOUT_MS idle time; at most
 *   INBOUND_MAX_CONNECTIONS sessions (421 to the next). No AUTH; no reverse DNS look-ups.
 * - STARTTLS when a certificate and key are configured.
 * - Every message that arrives whole is answered 250 once `onMessage` has stored what it means
 *   (a report, or the message with the reason it is unusable), so the sending MTA does not retry
 *   forever. Only when storing fails (database down) is the answer 451: try again later.
 * - `close()` stops accepting, lets sessions finish within `closeTimeoutMs`, then says 421.
 */
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from '../log';

export const MAX_RECIPIENTS = 100;
export const MAX_MESSAGES_PER_SESSION = 1_000;

export interface InboundEnvelope {
  mailFrom: string;
  rcptTo: string[];
  remoteAddress: string;
}

export type ListenerEvent = 'accepted' | 'relay_denied' | 'too_large' | 'store_failed' | 'too_many_recipients';

export interface InboundListenerOptions {
  host: string;
  port: number;
  bounceDomain: string;
  maxMessageBytes: number;
  maxConnections: number;
  socketTimeoutMs: number;
  /** How long close() lets sessions finish before it ends them with 421. */
  closeTimeoutMs: number;
  tls?: { cert: Buffer; key: Buffer };
  log: Logger;
  /** Stores what the message means; rejecting makes the answer 451 (the MTA tries again). */
  onMessage(envelope: InboundEnvelope, raw: Buffer): Promise<void>;
  /** For metrics. */
  onEvent?(event: ListenerEvent): void;
  onSessions?(delta: 1 | -1): void;
}

export interface InboundListener {
  port: number;
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/**
 * MTAs pipeline MAIL, RCPT and DATA (RFC 2920), and smtp-server answers them in one turn of the
 * event loop, a socket write each. Corked until the turn ends, the replies leave in one system
 * call: on this path a write costs more than parsing the commands (bench/deliverability.ts).
 * STARTTLS is unaffected: its 220 leaves at the end of the turn, and the TLS handshake only
 * starts when the client, having read it, sends its hello.
 */
function writeOncePerTurn(socket: Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Socket['write'];
}

export async function startInboundListener(opts: InboundListenerOptions): Promise<InboundListener> {
  const { log } = opts;
  const sessionMessages = new WeakMap<object, number>();
  const server = new SMTPServer({
    name: opts.bounceDomain,
    banner: 'EaseEmail inbound: delivery reports only',
    size: opts.maxMessageBytes,
    maxClients: opts.maxConnections,
    socketTimeout: opts.socketTimeoutMs,
    closeTimeout: opts.closeTimeoutMs,
    authOptional: true,
    disabledCommands: opts.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
    disableReverseLookup: true,
    logger: false,
    onConnect(_session, callback) {
      opts.onSessions?.(1);
      callback();
    },
    onClose() {
      opts.onSessions?.(-1);
    },
    onMailFrom(_address, session, callback) {
      const count = sessionMessages.get(session) ?? 0;
      if (count >= MAX_MESSAGES_PER_SESSION) return callback(smtpError(421, `4.7.0 at most ${MAX_MESSAGES_PER_SESSION} messages per connection; reconnect`));
      callback();
    },
    onRcptTo(address, session, callback) {
      if (domainOf(address.address) !== opts.bounceDomain) {
        opts.onEvent?.('relay_denied');
        return callback(smtpError(550, `5.7.1 relaying denied: this server accepts mail for ${opts.bounceDomain} only`));
      }
      if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) {
        opts.onEvent?.('too_many_recipients');
        return callback(smtpError(452, `4.5.3 too many recipients (at most ${MAX_RECIPIENTS} a message)`));
      }
      callback();
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes <= opts.maxMessageBytes) chunks.push(chunk); // past the limit: read and drop
      });
      stream.on('error', (err) => log.debug({ err }, 'inbound data stream error'));
      stream.on('end', () => {
        if (stream.sizeExceeded || bytes > opts.maxMessageBytes) {
          opts.onEvent?.('too_large');
          return callback(smtpError(552, `5.3.4 message too big: at most ${opts.maxMessageBytes} bytes`));
        }
        sessionMessages.set(session, (sessionMessages.get(session) ?? 0) + 1);
        const envelope: InboundEnvelope = {
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          remoteAddress: session.remoteAddress,
        };
        opts.onMessage(envelope, Buffer.concat(chunks)).then(
          () => {
            opts.onEvent?.('accepted');
            callback(null, 'OK: report received');
          },
          (err: unknown) => {
            opts.onEvent?.('store_failed');
            // `temporary`: expected and short-lived (a report that overtook the worker's own write).
            if ((err as { temporary?: boolean }).temporary) log.info({ rcptTo: envelope.rcptTo, reason: (err as Error).message }, 'inbound message deferred (451)');
            else log.error({ err, rcptTo: envelope.rcptTo }, 'could not store an inbound message; answered 451 so the sender retries');
            callback(smtpError(451, '4.3.0 temporary failure storing the message; try again later'));
          },
        );
      });
    },
  });
  // Client resets and protocol errors are the sender's problem; the listener serves the next one.
  server.on('error', (err) => log.debug({ err }, 'inbound SMTP session error'));
  // Runs before smtp-server takes the socket (prepended), so every reply goes through it.
  server.server.prependListener('connection', writeOncePerTurn);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close: () => (closing ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}
