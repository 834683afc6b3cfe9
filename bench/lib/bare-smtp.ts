/**
 * The inbound benchmark's yardstick: a bare smtp-server in its own process, configured as the
 * inbound listener is (no AUTH or STARTTLS, no reverse look-ups, no logger, the same size limit),
 * that only reads each message into a Buffer and answers 250. What the listener does beyond
 * this is the application's cost per DSN.
 */
import { fork } from 'node:child_process';
import { SMTPServer } from 'smtp-server';
import { processCpuMs } from './rss';

export interface BareSmtpServer {
  port: number;
  pid: number;
  /** CPU time (user + system) the server process has used so far, in ms. */
  cpuMs(): number;
  close(): Promise<void>;
}

export async function startBareSmtpServer(): Promise<BareSmtpServer> {
  const child = fork(__filename, ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`bare smtp-server exited (${code})`)));
  });
  child.removeAllListeners('exit');
  return {
    port,
    pid: child.pid!,
    cpuMs: () => processCpuMs(child.pid!),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

if (process.argv.includes('--child') && require.main === module) {
  const maxBytes = 10 * 1024 * 1024; // INBOUND_MAX_MESSAGE_BYTES' default
  const server = new SMTPServer({
    size: maxBytes,
    maxClients: 200,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        Buffer.concat(chunks);
        callback(null, 'OK');
      });
    },
  });
  server.on('error', () => undefined);
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.server.address() as { port: number }).port }));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
