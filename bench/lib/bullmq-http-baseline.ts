/**
 * A delivery baseline for HTTP work queued in BullMQ: a queue filled with N jobs and a plain
 * BullMQ worker (in a process of its own, like the real worker) whose processor POSTs the job's
 * body to a URL with undici, with no database and nothing else. Resolves once the worker has
 * finished all N; the caller measures the rate where the requests arrive.
 */
import { fork } from 'node:child_process';
import { Queue, Worker } from 'bullmq';
import { Agent } from 'undici';
import { producerConnection, workerConnectionOptions } from '../../app/queue';

export interface BullmqHttpBaselineOptions {
  redisUrl: string;
  /** Redis key prefix of a scratch queue (removed afterwards). */
  prefix: string;
  url: string;
  count: number;
  concurrency: number;
  body: string;
}

/** Fills the queue, then runs the worker in a child process until every job is done; resolves with the worker's CPU time. */
export async function runBullmqHttpBaseline(opts: BullmqHttpBaselineOptions): Promise<{ workerCpuMs: number }> {
  const redis = producerConnection(opts.redisUrl);
  const queue = new Queue('http-baseline', { connection: redis, prefix: opts.prefix });
  try {
    for (let i = 0; i < opts.count; i += 1000) {
      const n = Math.min(1000, opts.count - i);
      await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'post', data: { n: i + k }, opts: { removeOnComplete: true } })));
    }
    const child = fork(__filename, ['--child', JSON.stringify(opts)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return await new Promise<{ workerCpuMs: number }>((resolve, reject) => {
      child.once('message', (m: { cpuMs: number } | { error: string }) => ('error' in m ? reject(new Error(m.error)) : resolve({ workerCpuMs: m.cpuMs })));
      child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`baseline worker exited with ${code}`))));
    });
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await redis.quit();
  }
}

async function runChild(opts: BullmqHttpBaselineOptions): Promise<void> {
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  const cpuBefore = process.cpuUsage();
  const url = new URL(opts.url);
  let done = 0;
  const worker = new Worker(
    'http-baseline',
    async () => {
      const res = await agent.request({ origin: url.origin, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json' }, body: opts.body });
      await res.body.text();
      if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
    },
    { connection: workerConnectionOptions(opts.redisUrl), prefix: opts.prefix, concurrency: opts.concurrency },
  );
  await new Promise<void>((resolve) =>
    worker.on('completed', () => {
      if (++done === opts.count) resolve();
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  await worker.close();
  await agent.close();
  process.send!({ cpuMs: (cpu.user + cpu.system) / 1000 }, () => process.exit(0));
}

if (process.argv.includes('--child') && require.main === module) {
  const opts = JSON.parse(process.argv[process.argv.indexOf('--child') + 1]) as BullmqHttpBaselineOptions;
  runChild(opts).catch((err) => process.send!({ error: String(err) }, () => process.exit(1)));
}
