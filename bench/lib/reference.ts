/**
 * A yardstick for the machine at the moment of the run: a bare node:http server (read the body,
 * answer 202 with a small JSON) in its own process, loaded by the same generator. Figures of the
 * real api are best read against it: on a busy or slow machine both drop together.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { closedLoop, type LoadResult } from './load';

export async function measureHttpReference(opts: { connections: number; durationMs: number; body: string }): Promise<LoadResult> {
  const child = fork(__filename, ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`reference server exited (${code})`)));
    });
    return await closedLoop({
      origin: `http://127.0.0.1:${port}`,
      connections: opts.connections,
      durationMs: opts.durationMs,
      next: () => ({ method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, body: opts.body }),
    });
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
