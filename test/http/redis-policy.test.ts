/**
 * BullMQ needs `maxmemory-policy noeviction`: with any other policy the api and the worker warn
 * at start and /health/ready shows it, without failing readiness.
 */
import { Redis } from 'ioredis';
import { startApi, type RunningApi } from '../../app/api';
import { loadConfig } from '../../app/config';
import { createLogger } from '../../app/log';
import { startWorker, type RunningWorker } from '../../app/worker';
import { eventually } from '../support/eventually';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { privateRedis, type PrivateRedis } from '../support/redis-server';

let t: TestEnvironment;
let redis: PrivateRedis;
let api: RunningApi | undefined;
let worker: RunningWorker | undefined;
const lines: Array<{ level: number; msg: string; role?: string; maxmemoryPolicy?: string }> = [];

beforeAll(async () => {
  redis = await privateRedis();
  await redis.start();
  const admin = new Redis(redis.url);
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  admin.disconnect();
  t = await createTestEnvironment('redis_policy', { REDIS_URL: redis.url });
});
afterAll(async () => {
  await worker?.lifecycle.shutdown('test end');
  await api?.lifecycle.shutdown('test end');
  await t?.cleanup().catch(() => undefined);
  await redis?.stop();
});

const logTo = (role: string) => createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push({ ...JSON.parse(line), role }) } });

test('an evicting Redis: a warning at start from api and worker, shown by readiness, which stays 200', async () => {
  const config = loadConfig(t.env);
  api = await startApi(config, logTo('api'));
  worker = await startWorker(config, logTo('worker'));
  for (const role of ['api', 'worker']) {
    const warning = await eventually(async () => lines.find((l) => l.role === role && /maxmemory-policy/.test(l.msg)), `the ${role}'s warning`);
    expect(warning).toMatchObject({ level: 40, maxmemoryPolicy: 'allkeys-lru' });
  }
  for (const port of [api.port, worker.port]) {
    const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', redisMaxmemoryPolicy: 'allkeys-lru', warnings: [expect.stringMatching(/noeviction/)] });
  }
});
