/** The API skeleton: health, authentication and scopes, problem+json, graceful shutdown. */
import http from 'node:http';
import Router from '@koa/router';
import { startApi, type RunningApi } from '../../app/api';
import { loadConfig } from '../../app/config';
import { createHttpApp } from '../../app/http/app';
import { createMetrics } from '../../app/http/metrics';
import { closeServer, listen } from '../../app/http/server';
import { createLifecycle } from '../../app/lifecycle';
import { eventually } from '../support/eventually';
import { expectProblem, request } from '../support/http';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { freePort, runCli, startCli, waitForHttp } from '../support/processes';
import { privateRedis, type PrivateRedis } from '../support/redis-server';
import { testLog as log } from '../support/stack';
let t: TestEnvironment;
let redis: PrivateRedis;
let api: RunningApi;
let base: string;

beforeAll(async () => {
  redis = await privateRedis();
  await redis.start();
  t = await createTestEnvironment('api', { REDIS_URL: redis.url, API_KEY_CACHE_TTL_MS: '1000' });
  api = await startApi(t.config, log);
  base = `http://127.0.0.1:${api.port}`;
});
afterAll(async () => {
  await api?.lifecycle.shutdown('test end');
  await redis?.stop();
  await t?.cleanup();
});

const get = (path: string, key?: string) => request(base, key, 'GET', path);

describe('health', () => {
  it('answers live, ready and the compatibility alias with the documented bodies', async () => {
    expect((await get('/health/live')).body).toEqual({ status: 'alive' });
    for (const path of ['/health/ready', '/health']) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ready', database: 'ok', redis: 'ok', redisMaxmemoryPolicy: 'noeviction' });
    }
  });

  it('reports 503 with the reason while Redis is down, and recovers', async () => {
    await redis.stop();
    const res = await get('/health/ready');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'unavailable', database: 'ok', redis: 'error', errors: { redis: expect.any(String) } });
    expect((await get('/health/live')).status).toBe(200); // liveness never depends on the stores
    await redis.start();
    await eventually(async () => ((await get('/health/ready')).status === 200 ? true : undefined), 'ready again', 10_000);
  });

  it('exposes Prometheus metrics', async () => {
    const { text } = await get('/metrics');
    expect(text).toMatch(/easeemail_http_request_duration_seconds_bucket\{.*route="\/health\/ready"/);
    expect(text).toMatch(/process_resident_memory_bytes\{role="api"\}/);
  });
});

describe('authentication and scopes', () => {
  it('401 without a key, with a malformed one and with an unknown one', async () => {
    const none = expectProblem(await get('/v1/api-keys'), 401, /missing API key/) as { instance?: string };
    expect(none.instance).toBe('/v1/api-keys');
    await expectProblem(await request(base, undefined, 'GET', '/v1/api-keys', undefined, { authorization: 'Basic abc' }), 401, /missing API key/);
    await expectProblem(await get('/v1/api-keys', 'ee_unknownunknownunknown'), 401, /invalid or revoked/);
    expect((await get('/v1/api-keys')).headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('403 for a key without the scope; 200 with it; keys are never listed', async () => {
    const { key: readKey } = await createKey(['emails:read']);
    await expectProblem(await get('/v1/api-keys', readKey), 403, /lacks the "admin" scope/);
    const { key: adminKey } = await createKey(['admin']);
    const res = await get('/v1/api-keys', adminKey);
    expect(res.status).toBe(200);
    expect(res.body.data.length).toBeGreaterThanOrEqual(2);
    expect(res.text).not.toContain(adminKey);
    expect(res.text).not.toContain('keyHash');
  });

  it('a key created with the CLI authenticates, and stops working once revoked', async () => {
    const created = await runCli(['api-keys', 'create', '--name', 'cli', '--scopes', 'admin', '--json'], t.env);
    expect(created.code).toBe(0);
    const { key, id } = JSON.parse(created.output.trim().split('\n').pop()!);
    expect(key).toMatch(/^ee_[A-Za-z0-9_-]{43}$/);
    expect((await get('/v1/api-keys', key)).status).toBe(200);
    expect((await runCli(['api-keys', 'revoke', id], t.env)).code).toBe(0);
    // The api trusts its cached look-up for API_KEY_CACHE_TTL_MS (1 s here), then refuses.
    await eventually(async () => ((await get('/v1/api-keys', key)).status === 401 ? true : undefined), 'the revoked key to be refused', 3_000);
  });
});

describe('errors', () => {
  it('unknown routes and methods are problem+json', async () => {
    await expectProblem(await get('/v1/nothing-here'), 404, /no route for GET \/v1\/nothing-here/);
    const { key } = await createKey(['admin']);
    await expectProblem(await request(base, key, 'DELETE', '/v1/api-keys'), 405);
  });

  it('echoes a sane X-Request-Id and replaces an unsafe one', async () => {
    expect((await fetch(base + '/health/live', { headers: { 'x-request-id': 'abc-123' } })).headers.get('x-request-id')).toBe('abc-123');
    expect((await fetch(base + '/health/live', { headers: { 'x-request-id': 'not a sane id (spaces, parentheses)' } })).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

async function createKey(scopes: string[]) {
  return api && (await (await import('../../app/auth/api-keys')).createApiKeyService({ db: t.db }).create({ name: 'test', scopes }));
}

describe('graceful shutdown', () => {
  it('on SIGTERM the api process fails readiness at once, then exits 0', async () => {
    const port = await freePort();
    const proc = startCli(['api'], { ...t.env, PORT: String(port), SHUTDOWN_DRAIN_DELAY_MS: '1500', LOG_LEVEL: 'info' });
    await waitForHttp(`http://127.0.0.1:${port}/health/ready`);
    proc.child.kill('SIGTERM');
    // Within the drain delay (1.5 s) readiness fails while the process still answers.
    const ready = await eventually(async () => {
      const res = await request(`http://127.0.0.1:${port}`, undefined, 'GET', '/health/ready');
      return res.status === 503 ? res : undefined;
    }, 'readiness to fail', 1_500);
    expect(ready.body).toMatchObject({ status: 'shutting_down' });
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toMatch(/"clean":true,"msg":"stopped"/);
  });

  it('lets in-flight requests finish before the server closes', async () => {
    const lifecycle = createLifecycle(log, 5_000);
    const slow = new Router();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const slowArrived = new Promise<void>((r) => (arrived = r));
    slow.get('/slow', async (ctx) => {
      arrived();
      await released;
      ctx.body = { done: true };
    });
    const app = createHttpApp({ log, metrics: createMetrics('api'), db: t.db, redis: await connectRedis(), isShuttingDown: lifecycle.isShuttingDown, bodyLimitBytes: 1024, routers: [slow] });
    const { server, port } = await listen(app, 0, '127.0.0.1');
    lifecycle.onShutdown('http server', () => closeServer(server));
    const agent = new http.Agent({ keepAlive: true });
    const inFlight = getOver(port, '/slow', agent);
    await slowArrived;
    let stoppedYet = false;
    const stopped = lifecycle.shutdown('test').then((clean) => ((stoppedYet = true), clean));
    // The listener is closed (no new connections), and the shutdown still waits for /slow.
    await eventually(() => getOver(port, '/health/live', new http.Agent()).then(() => undefined, (err: Error) => (/ECONNREFUSED/.test(err.message) ? true : undefined)), 'the listener to close');
    expect(stoppedYet).toBe(false);
    release();
    expect(await inFlight).toEqual({ status: 200, body: '{"done":true}' });
    expect(await stopped).toBe(true);
    agent.destroy();
  });
});

let extraRedis: import('ioredis').Redis | undefined;
async function connectRedis() {
  const { producerConnection } = await import('../../app/queue');
  extraRedis = producerConnection(loadConfig(t.env).redisUrl);
  return extraRedis;
}
afterAll(() => extraRedis?.disconnect());

function getOver(port: number, path: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}
