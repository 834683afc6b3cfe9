/**
 * A yardstick for the machine at the moment of the run: a bare node:http server (read the body,
 * answer 202 with a small JSON) in its own process, loaded by the same generator. Figures of the
 * real api are best read against it: on a busy or slow machine both drop together. Its CPU time
 * per request at a steady low rate shows the fixed cost of a wake-up (system calls, scheduling),
 * which a process pays for each message it handles one at a time.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { closedLoop, openLoop, type LoadResult } from './load';
import { processCpuMs } from './rss';

export interface ReferenceResult {
  /** The server at full speed (closed loop, `connections`). */
  saturated: LoadResult & { cpuMsPerRequest: number };
  /** The server at `steadyRate` requests/s (open loop): what one request costs when the process is mostly idle. */
  steady?: LoadResult & { cpuMsPerRequest: number };
}

/** Measures the reference server at full speed and, when `steadyRate` is given, at that steady rate. */
export async function measureHttpReference(opts: { connections: number; durationMs: number; body: string; steadyRate?: number }): Promise<ReferenceResult> {
  const child = fork(__filename, ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`reference server exited (${code})`)));
    });
    const origin = `http://127.0.0.1:${port}`;
    const next = () => ({ method: 'POST' as const, path: '/', headers: { 'content-type': 'application/json' }, body: opts.body });
    const measured = async (run: () => Promise<LoadResult>) => {
      const cpu = processCpuMs(child.pid!);
      const result = await run();
      return { ...result, cpuMsPerRequest: (processCpuMs(child.pid!) - cpu) / Math.max(1, result.requests) };
    };
    const saturated = await measured(() => closedLoop({ origin, connections: opts.connections, durationMs: opts.durationMs, next }));
    const rate = opts.steadyRate;
    const steady = rate ? await measured(() => openLoop({ origin, ratePerSecond: rate, durationMs: opts.durationMs, next })) : undefined;
    return { saturated, steady };
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
  }
}

if (process.argv.includes('--child') && require.main === module) {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end('{"id":"00000000-0000-4000-8000-000000000000","status":"queued"}');
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
}
