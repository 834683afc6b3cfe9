/**
 * Real HTTP receivers on loopback for webhook tests and benchmarks, with scriptable answers:
 * status sequences, headers (Retry-After, Location), delays, hanging until the client gives up,
 * and a record of every request (headers, raw body, arrival time, peer address).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  /** Date.now() when the body had fully arrived. */
  at: number;
  method: string;
  path: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  remoteAddress: string;
}

export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer after this long. */
  delayMs?: number;
  /** Never answer; the connection stays open until the client gives up or the receiver closes. */
  hang?: boolean;
}

export type AnswerFn = (req: ReceivedRequest, index: number) => Answer;

export interface Receiver {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Every request so far, in arrival order (empty when started with keep: false). */
  requests: ReceivedRequest[];
  /** How many requests arrived (also with keep: false). */
  count(): number;
  /** Requests received and not yet answered or abandoned by the client, now and at most so far. */
  open(): number;
  maxOpen(): number;
  /** Answers used in order for the next requests; after them the default answer applies. */
  script(...answers: Answer[]): void;
  setDefault(answer: Answer | AnswerFn): void;
  /** Resolves once `n` requests have arrived in total. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  answer?: Answer | AnswerFn;
  /** Keep every request in `requests` (default true; benchmarks turn it off). */
  keep?: boolean;
  onRequest?: (req: ReceivedRequest) => void;
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const keep = opts.keep ?? true;
  let fallback: Answer | AnswerFn = opts.answer ?? { status: 200, body: 'ok' };
  const scripted: Answer[] = [];
  const requests: ReceivedRequest[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const pendingTimers = new Set<NodeJS.Timeout>();
  let total = 0;
  let open = 0;
  let maxOpen = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const received: ReceivedRequest = {
        at: Date.now(),
        method: req.method ?? '',
        path: req.url ?? '',
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remoteAddress: req.socket.remoteAddress ?? '',
      };
      const index = total++;
      open++;
      maxOpen = Math.max(maxOpen, open);
      res.once('close', () => open--);
      if (keep) requests.push(received);
      opts.onRequest?.(received);
      for (const w of waiters.filter((w) => total >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      const answer = scripted.shift() ?? (typeof fallback === 'function' ? fallback(received, index) : fallback);
      if (answer.hang) return;
      const respond = () => {
        res.writeHead(answer.status ?? 200, { 'content-type': 'text/plain', ...answer.headers });
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) {
        const t = setTimeout(() => {
          pendingTimers.delete(t);
          respond();
        }, answer.delayMs);
        pendingTimers.add(t);
      } else respond();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    count: () => total,
    open: () => open,
    maxOpen: () => maxOpen,
    script: (...answers) => void scripted.push(...answers),
    setDefault: (answer) => void (fallback = answer),
    waitFor(n, timeoutMs = 20_000) {
      if (total >= n) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver got ${total} of ${n} requests within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(requests);
          },
        });
      });
    },
    async close() {
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Receivers a suite starts as it goes, closed together in its afterAll. */
export function receiverPool() {
  const started: Receiver[] = [];
  return {
    async start(opts?: ReceiverOptions): Promise<Receiver> {
      const r = await startReceiver(opts);
      started.push(r);
      return r;
    },
    closeAll: () => Promise.all(started.map((r) => r.close())),
  };
}
