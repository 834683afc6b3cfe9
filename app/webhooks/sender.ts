/**
 * One HTTP POST to a webhook endpoint, through the outbound guard, with a hard deadline for the
 * whole exchange (connect, headers, body), no redirects (a 3xx is a failed attempt: following one
 * would let a public URL bounce the worker into private space), and only a bounded prefix of
 * the answer kept. It never throws: every way an attempt can end is a SendResult.
 */
import { Agent } from 'undici';
import { destinationProblem, guardedLookup, type LookupFunction } from './guard';
import { parseRetryAfter } from './retry-policy';

/** What is stored of a receiver's answer. */
export const RESPONSE_PREFIX_BYTES = 2048;
/** Answers up to this size are read to the end so the connection can be reused; larger ones are cut. */
const DRAIN_LIMIT_BYTES = 64 * 1024;
const USER_AGENT = 'EaseEmail-Webhooks/1';

export type SendOutcome =
  /** 2xx */
  | 'success'
  /** 410 Gone: the receiver asks us to stop; the endpoint gets disabled. */
  | 'gone'
  /** Any other status, 3xx included. */
  | 'http-error'
  | 'timeout'
  /** Connection-level failure (refused, reset, TLS, DNS). */
  | 'network'
  /** The outbound guard refused the destination: nothing was sent. */
  | 'refused';

export interface SendResult {
  outcome: SendOutcome;
  statusCode?: number;
  /** Bounded prefix of the answer body. */
  responseBody?: string;
  durationMs: number;
  error?: string;
  retryAfterMs?: number;
}

export interface WebhookSender {
  send(input: { url: string; headers: Record<string, string>; body: string }): Promise<SendResult>;
  close(): Promise<void>;
}

export interface WebhookSenderOptions {
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  /** Name resolution, checked by the guard; defaults to the system resolver (dns.lookup). */
  lookup?: LookupFunction;
  now?: () => number;
}

/** Postgres text cannot hold NUL; a cut multi-byte character becomes U+FFFD. */
function printable(bytes: Buffer): string {
  return bytes.toString('utf8').replace(/\u0000/g, '\uFFFD');
}

function findInCauses(err: unknown, test: (e: NodeJS.ErrnoException) => boolean): NodeJS.ErrnoException | undefined {
  for (let e = err as NodeJS.ErrnoException | undefined, depth = 0; e && depth < 5; e = e.cause as NodeJS.ErrnoException | undefined, depth++) {
    if (test(e)) return e;
  }
  return undefined;
}

function describeNetworkError(err: unknown): string {
  const e = findInCauses(err, (x) => typeof x.code === 'string') ?? (err as NodeJS.ErrnoException);
  const message = String(e?.message ?? err).split('\n')[0].slice(0, 300);
  return e?.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}

/** Where a URL sends to, parsed once per endpoint URL (the destination is still checked per attempt). */
interface Target {
  url: URL;
  origin: string;
  path: string;
}

/** Parsed URLs kept per process: one per endpoint URL seen, dropped all at once past this many. */
const MAX_CACHED_TARGETS = 10_000;

/**
 * Reads at most DRAIN_LIMIT_BYTES of an answer, keeping its first RESPONSE_PREFIX_BYTES; resolves
 * with the prefix (undefined when empty) and never rejects (a body cut short by a timeout or a
 * reset does not change what the status said). Stream events rather than an async iterator: no
 * promise per chunk on the path every delivery takes.
 */
function readPrefix(body: NodeJS.ReadableStream & { destroy(): void }): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let read = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      body.removeListener('data', onData);
      resolve(chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (kept < RESPONSE_PREFIX_BYTES) {
        const part = chunk.subarray(0, RESPONSE_PREFIX_BYTES - kept);
        chunks.push(part);
        kept += part.length;
      }
      if (read > DRAIN_LIMIT_BYTES) {
        body.destroy();
        finish();
      }
    };
    body.on('data', onData);
    body.once('end', finish);
    body.once('error', finish);
    body.once('close', finish);
  });
}

export function createWebhookSender(opts: WebhookSenderOptions): WebhookSender {
  const now = opts.now ?? Date.now;
  const agent = new Agent({
    connect: {
      timeout: opts.timeoutMs,
      // The guard sits in the socket's own lookup: the address checked is the address connected to.
      ...(opts.allowPrivateNetworks ? (opts.lookup ? { lookup: opts.lookup } : {}) : { lookup: guardedLookup(opts.lookup) }),
    },
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    keepAliveTimeout: 10_000,
  });

  const targets = new Map<string, Target | null>();
  /** The parsed URL, or null when it is not a valid one. */
  function targetOf(raw: string): Target | null {
    let t = targets.get(raw);
    if (t === undefined) {
      try {
        const url = new URL(raw);
        t = { url, origin: url.origin, path: url.pathname + url.search };
      } catch {
        t = null;
      }
      if (targets.size >= MAX_CACHED_TARGETS) targets.clear();
      targets.set(raw, t);
    }
    return t;
  }

  async function send(input: { url: string; headers: Record<string, string>; body: string }): Promise<SendResult> {
    const started = now();
    const elapsed = () => Math.max(0, now() - started);
    const target = targetOf(input.url);
    if (!target) return { outcome: 'refused', durationMs: 0, error: 'endpoint URL is not valid' };
    if (!opts.allowPrivateNetworks) {
      // Literal addresses never reach the lookup, so they are judged here (every attempt: the rules are code, the parse is cached).
      const problem = destinationProblem(target.url);
      if (problem) return { outcome: 'refused', durationMs: elapsed(), error: `refused: ${problem}` };
    }

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), opts.timeoutMs);
    try {
      const res = await agent.request({
        origin: target.origin,
        path: target.path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT, ...input.headers },
        body: input.body,
        signal: abort.signal,
      });
      const prefix = await readPrefix(res.body);
      const statusCode = res.statusCode;
      const responseBody = prefix ? printable(prefix) : undefined;
      const durationMs = elapsed();
      if (statusCode >= 200 && statusCode < 300) return { outcome: 'success', statusCode, responseBody, durationMs };
      const retryAfterHeader = res.headers['retry-after'];
      const retryAfterMs = parseRetryAfter(Array.isArray(retryAfterHeader) ? retryAfterHeader[0] : retryAfterHeader, now());
      if (statusCode === 410) return { outcome: 'gone', statusCode, responseBody, durationMs, error: 'receiver answered 410 Gone' };
      let error = `receiver answered HTTP ${statusCode}`;
      if (statusCode >= 300 && statusCode < 400) {
        const location = res.headers.location;
        error += `; redirects are not followed${location ? ` (Location: ${String(location).slice(0, 200)})` : ''}`;
      }
      return { outcome: 'http-error', statusCode, responseBody, durationMs, error, retryAfterMs };
    } catch (err) {
      const durationMs = elapsed();
      if (abort.signal.aborted || findInCauses(err, (e) => /TIMEOUT/.test(String(e.code)))) {
        return { outcome: 'timeout', durationMs, error: `no answer within ${opts.timeoutMs} ms` };
      }
      const refused = findInCauses(err, (e) => e.code === 'EWEBHOOKGUARD');
      if (refused) return { outcome: 'refused', durationMs, error: refused.message };
      return { outcome: 'network', durationMs, error: describeNetworkError(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  let closing: Promise<void> | undefined;
  return {
    send,
    close: () => (closing ??= agent.close().catch(() => agent.destroy())),
  };
}
