/**
 * A local SMTP server in its own process (so the benchmark's load generator does not share its
 * CPU), reporting each received message's X-EaseEmail-Id and arrival time (Date.now(), the same
 * clock as the benchmark's) back over IPC in small batches.
 *
 *   const sink = await startSmtpSink();   // sink.url → SMTP_URL
 *   await sink.waitForCount(5000);
 */
import { fork, type ChildProcess } from 'node:child_process';

type SinkMessage = { type: 'ready'; port: number } | { type: 'received'; items: [string | null, number][] };

export interface SmtpSink {
  url: string;
  pid: number;
  /** emailId → arrival time of its first copy. */
  received: Map<string, number>;
  /** Every message, duplicates and messages without an id included. */
  count(): number;
  /** Copies beyond the first, per emailId. */
  duplicates(): number;
  waitForCount(n: number, timeoutMs: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const child: ChildProcess = fork(__filename, ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const received = new Map<string, number>();
  let total = 0;
  let dupes = 0;
  const waiters = new Set<() => void>();
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`SMTP sink exited (${code})`)));
    child.on('message', (m: SinkMessage) => {
      if (m.type === 'ready') return resolve(m.port);
      for (const [id, at] of m.items) {
        total++;
        if (id === null) continue;
        if (received.has(id)) dupes++;
        else received.set(id, at);
      }
      for (const w of waiters) w();
    });
  });
  child.removeAllListeners('exit');
  return {
    url: `smtp://127.0.0.1:${port}`,
    pid: child.pid!,
    received,
    count: () => total,
    duplicates: () => dupes,
    waitForCount(n, timeoutMs) {
      if (total >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (total < n) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SMTP sink received ${total} of ${n} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    reset() {
      received.clear();
      total = 0;
      dupes = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function runChild(): Promise<void> {
  const { startSmtpServer } = await import('../../test/support/smtp');
  const server = await startSmtpServer();
  let sent = 0;
  const flush = () => {
    if (server.messages.length === sent) return;
    const items = server.messages.slice(sent).map((m) => [m.emailId ?? null, m.receivedAt] as [string | null, number]);
    sent = server.messages.length;
    process.send!({ type: 'received', items } satisfies SinkMessage);
    // Keep memory flat over long runs: the parent has what it needs.
    if (sent > 50_000) {
      server.messages.length = 0;
      sent = 0;
    }
  };
  setInterval(flush, 10);
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
  process.send!({ type: 'ready', port: server.port } satisfies SinkMessage);
}

if (process.argv.includes('--child') && require.main === module) void runChild();
