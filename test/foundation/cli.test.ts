/** The `easeemail` command as a separate process: usage, configuration errors, wait, healthcheck. */
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { freePort, runCli, startCli, stopProcess, waitForHttp } from '../support/processes';

let t: TestEnvironment;
beforeAll(async () => {
  t = await createTestEnvironment('cli');
});
afterAll(() => t?.cleanup());

it('prints help for the whole command and for each subcommand', async () => {
  const top = await runCli(['--help'], {});
  expect(top.code).toBe(0);
  for (const name of ['api', 'worker', 'migrate', 'wait', 'api-keys', 'healthcheck']) expect(top.output).toContain(`  ${name}`);
  const sub = await runCli(['api-keys', '--help'], {});
  expect(sub).toMatchObject({ code: 0, output: expect.stringContaining('easeemail api-keys create --name NAME --scopes') });
  expect(await runCli(['frobnicate'], {})).toMatchObject({ code: 2, output: expect.stringContaining('unknown command "frobnicate"') });
});

it('exits 2 listing every bad setting, without echoing secrets', async () => {
  const r = await runCli(['api'], { DATABASE_URL: 'mysql://user:topsecret@db/x', REDIS_URL: 'redis://127.0.0.1:6379', PORT: 'x', LOG_LEVEL: 'chatty' });
  expect(r.code).toBe(2);
  expect(r.output).toMatch(/invalid configuration:[\s\S]*DATABASE_URL: must be a URL with scheme postgresql or postgres[\s\S]*PORT:[\s\S]*LOG_LEVEL:/);
  expect(r.output).not.toContain('topsecret');
});

it('wait: returns at once when PostgreSQL and Redis answer', async () => {
  const r = await runCli(['wait', '--timeout', '10'], t.env);
  expect(r.code).toBe(0);
  expect(r.output).toContain('PostgreSQL at 127.0.0.1:5432 is up');
  expect(r.output).toContain('Redis at 127.0.0.1:6379 is up');
});

it('wait --timeout 5 against a closed port exits non-zero in about 5 s, naming what it waited for', async () => {
  const closed = await freePort(); // nothing listens there
  const r = await runCli(['wait', '--timeout', '5'], { ...t.env, DATABASE_URL: `postgresql://postgres:pw@127.0.0.1:${closed}/x` });
  expect(r.code).toBe(1);
  expect(r.output).toContain(`gave up after 5 s waiting for PostgreSQL at 127.0.0.1:${closed} (ECONNREFUSED)`);
  expect(r.output).not.toContain('pw@');
  // Process start-up (a few seconds on a loaded machine) + the 5 s budget.
  expect(r.ms).toBeGreaterThanOrEqual(5_000);
  expect(r.ms).toBeLessThan(15_000);
});

it('healthcheck exits 0 against a live role and 1 when nothing answers', async () => {
  const port = await freePort();
  const healthPort = await freePort();
  const worker = startCli(['worker'], { ...t.env, WORKER_HEALTH_PORT: String(healthPort) });
  const api = startCli(['api'], { ...t.env, PORT: String(port) });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/health/live`);
    await waitForHttp(`http://127.0.0.1:${healthPort}/health/ready`);
    expect((await runCli(['healthcheck', 'api'], { PORT: String(port) })).code).toBe(0);
    expect((await runCli(['healthcheck', 'worker', '--ready'], { WORKER_HEALTH_PORT: String(healthPort) })).code).toBe(0);
    const down = await runCli(['healthcheck', 'api'], { PORT: String(await freePort()) });
    expect(down.code).toBe(1);
    expect(down.output).toMatch(/api \/health\/live: .*ECONNREFUSED/);
  } finally {
    expect(await stopProcess(api)).toBe(0);
    expect(await stopProcess(worker)).toBe(0);
  }
  // Five processes start here; on a loaded 2-core machine each start-up takes seconds.
}, 120_000);
