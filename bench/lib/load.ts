/**
 * A small HTTP load generator over keep-alive connections (undici Pool), for the benchmarks:
 * - closedLoop: N connections, each sending its next request as soon as the previous answered
 *   (throughput at a fixed concurrency, like wrk -c N);
 * - openLoop: requests at a steady rate whatever the answers do (latency at a given load, so a
 *   slow answer cannot hide the ones that should have been sent meanwhile).
 * Latencies are measured from just before the request is written to the end of the response body.
 */
import { Pool } from 'undici';

export interface LoadRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  requests: number;
  /** Transport errors (no HTTP answer). */
  errors: number;
  statuses: Record<number, number>;
  durationMs: number;
  perSecond: number;
  latenciesMs: number[];
}

export interface LoadOptions {
  origin: string;
  durationMs: number;
  /** Builds request number i. */
  next(i: number): LoadRequest;
  /** Sees every answer (e.g. to collect ids); `startedAt` is performance.now() at send. */
  onResponse?(status: number, body: string, i: number, startedAt: number): void;
}

async function send(pool: Pool, req: LoadRequest): Promise<{ status: number; body: string }> {
  const res = await pool.request({ method: req.method, path: req.path, headers: req.headers, body: req.body });
  return { status: res.statusCode, body: await res.body.text() };
}

function finish(started: number, latencies: number[], statuses: Record<number, number>, errors: number): LoadResult {
  const durationMs = performance.now() - started;
  return { requests: latencies.length, errors, statuses, durationMs, perSecond: (latencies.length / durationMs) * 1000, latenciesMs: latencies };
}

export async function closedLoop(opts: LoadOptions & { connections: number; /** Stop after this many requests, if before durationMs. */ maxRequests?: number }): Promise<LoadResult> {
  const pool = new Pool(opts.origin, { connections: opts.connections, pipelining: 1 });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let errors = 0;
  let i = 0;
  const started = performance.now();
  const end = started + opts.durationMs;
  try {
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        while (performance.now() < end && (opts.maxRequests === undefined || i < opts.maxRequests)) {
          const n = i++;
          const req = opts.next(n);
          const t0 = performance.now();
          try {
            const { status, body } = await send(pool, req);
            latencies.push(performance.now() - t0);
            statuses[status] = (statuses[status] ?? 0) + 1;
            opts.onResponse?.(status, body, n, t0);
          } catch {
            errors++;
          }
        }
      }),
    );
    return finish(started, latencies, statuses, errors);
  } finally {
    await pool.close();
  }
}

export async function openLoop(
  opts: LoadOptions & { ratePerSecond: number; connections?: number; /** Checked before each send: true stops sending early (durationMs is then the cap). */ until?: () => boolean },
): Promise<LoadResult> {
  const pool = new Pool(opts.origin, { connections: opts.connections ?? 64, pipelining: 1 });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const inFlight = new Set<Promise<void>>();
  let errors = 0;
  const total = Math.round((opts.durationMs / 1000) * opts.ratePerSecond);
  const interval = 1000 / opts.ratePerSecond;
  const started = performance.now();
  try {
    for (let n = 0; n < total; n++) {
      // Send on schedule (catching up after a late timer), not when the previous answered.
      const due = started + n * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      if (opts.until?.()) break;
      const req = opts.next(n);
      const t0 = performance.now();
      const p = send(pool, req).then(
        ({ status, body }) => {
          latencies.push(performance.now() - t0);
          statuses[status] = (statuses[status] ?? 0) + 1;
          opts.onResponse?.(status, body, n, t0);
        },
        () => void errors++,
      );
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
    return finish(started, latencies, statuses, errors);
  } finally {
    await pool.close();
  }
}

/** A load result's answers by status, and transport errors: "202×1000, 429×3, 2 transport errors". */
export function describeStatuses(r: LoadResult): string {
  return (
    Object.entries(r.statuses)
      .map(([s, n]) => `${s}×${n}`)
      .join(', ') + (r.errors ? `, ${r.errors} transport errors` : '')
  );
}
