/**
 * docker-entrypoint.sh in real containers: bounded waits for the data stores with a clear error,
 * what each role starts, migrations only for api with RUN_MIGRATIONS=true, pass-through of other
 * commands, and SIGTERM (docker stop -t 30) ending a running role with exit 0.
 *
 * PostgreSQL and Redis come from compose/compose.yaml (`up -d db redis`); every container here
 * joins that project's internal network, runs with the compose hardening (read-only root, no
 * capabilities) and uses its own database schema.
 */
import {
  ComposeProject,
  IMAGE,
  docker,
  eventually,
  POLL,
  logs,
  removeContainers,
  report,
  run,
  runDetached,
  runToCompletion,
  uniqueName,
  waitForExit,
} from './support';

const PASSWORD = 'easeemail'; // compose's dev database password
const SECRET_PASSWORD = 'pw-that-must-never-be-printed';

let project: ComposeProject;
const started: string[] = [];

const databaseUrl = (schema: string, host = 'db:5432', password = PASSWORD) => `postgresql://easeemail:${password}@${host}/easeemail?schema=${schema}`;

/** `docker run` arguments for the image on the project's network, hardened as compose runs it. */
function containerArgs(env: Record<string, string>): string[] {
  const args = ['--network', project.network('internal'), '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges'];
  for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
  return args;
}

function appEnv(schema: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl(schema),
    REDIS_URL: 'redis://redis:6379',
    REDIS_PREFIX: schema,
    SMTP_URL: 'smtp://127.0.0.1:1025',
    ENCRYPTION_KEY: 'ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

async function start(role: string[], env: Record<string, string>): Promise<string> {
  const name = uniqueName('eectentry');
  started.push(name);
  return runDetached(name, [...containerArgs(env), IMAGE, ...role]);
}

async function exec(container: string, args: string[]) {
  return run('docker', ['exec', container, ...args], { timeoutMs: 30_000 });
}

/** Arguments of every process in the container, with its parent pid. */
async function processes(container: string): Promise<{ pid: number; ppid: number; argv: string[] }[]> {
  const script = 'for p in /proc/[0-9]*; do [ -r "$p/cmdline" ] && printf "%s\\t%s\\t%s\\n" "${p#/proc/}" "$(cut -d" " -f4 "$p/stat")" "$(tr "\\0" " " <"$p/cmdline")"; done';
  const r = await exec(container, ['bash', '-c', script]);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
    .map(([pid, ppid, cmd]) => ({ pid: Number(pid), ppid: Number(ppid), argv: cmd.trim().split(' ') }))
    .filter((p) => p.argv[0] !== 'bash' && p.argv[0] !== 'cut' && p.argv[0] !== 'tr');
}

async function waitUntilHealthy(container: string, role: 'api' | 'worker'): Promise<void> {
  await eventually(
    async () => ((await exec(container, ['easeemail', 'healthcheck', role, '--ready'])).code === 0 ? true : undefined),
    `${role} in ${container} to be ready`,
    { ...POLL, timeoutMs: 90_000, describe: () => logs(container) },
  );
}

/** `docker stop -t 30` and the container's exit code. */
async function stopGracefully(container: string): Promise<{ exitCode: number; ms: number }> {
  const t0 = Date.now();
  await docker(['stop', '-t', '30', container], { timeoutMs: 60_000 });
  const { exitCode } = await waitForExit(container, 30_000);
  return { exitCode, ms: Date.now() - t0 };
}

async function migrationStatus(schema: string): Promise<{ exitCode: number; output: string }> {
  return runToCompletion([...containerArgs(appEnv(schema)), IMAGE, 'migrate', 'status']);
}

beforeAll(async () => {
  project = await ComposeProject.create('eectentry');
  await project.compose(['up', '-d', 'db', 'redis']);
  await project.waitHealthy({ timeoutMs: 120_000, expect: { db: 1, redis: 1 } });
}, 240_000);

afterAll(async () => {
  await removeContainers(started);
  await project?.down();
}, 240_000);

describe('docker-entrypoint.sh', () => {
  test('unreachable data stores: non-zero exit within the bounded wait, a clear message, no credentials', async () => {
    // A server that accepts connections and never answers: the probe's own timeouts must bound it too.
    const silent = uniqueName('eectsilent');
    started.push(silent);
    await runDetached(silent, ['--network', project.network('internal'), IMAGE, 'node', '-e', 'require("net").createServer(() => {}).listen(5432)']);
    // By address, not by name: no DNS look-up that the network's resolver might forward elsewhere.
    const silentIp = (await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${project.network('internal')}").IPAddress}}`, silent])).stdout.trim();
    expect(silentIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await eventually(async () => ((await exec(silent, ['node', '-e', 'require("net").connect(5432, "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))'])).code === 0 ? true : undefined), 'the silent server to listen', {
      ...POLL,
      timeoutMs: 30_000,
      intervalMs: 300,
    });

    const cases: { role: string; env: Record<string, string>; expect: RegExp }[] = [
      { role: 'api', env: { DATABASE_URL: databaseUrl('ct_unreachable', '127.0.0.1:1', SECRET_PASSWORD) }, expect: /gave up after 5 s waiting for PostgreSQL at 127\.0\.0\.1:1 \(ECONNREFUSED\)/ },
      { role: 'worker', env: { REDIS_URL: 'redis://127.0.0.1:1' }, expect: /gave up after 5 s waiting for Redis at 127\.0\.0\.1:1/ },
      { role: 'migrate', env: { DATABASE_URL: databaseUrl('ct_unreachable', `${silentIp}:5432`, SECRET_PASSWORD) }, expect: new RegExp(`gave up after 5 s waiting for PostgreSQL at ${silentIp.replace(/\./g, '\\.')}:5432 \\(timeout expired\\)`) },
    ];
    const results = await Promise.all(
      cases.map((c) => runToCompletion([...containerArgs(appEnv('ct_unreachable', { WAIT_TIMEOUT_SECONDS: '5', ...c.env })), IMAGE, c.role], { timeoutMs: 60_000 })),
    );
    results.forEach((r, i) => {
      const c = cases[i];
      report(`unreachable store, role ${c.role}: exit ${r.exitCode} after ${(r.ms / 1000).toFixed(1)} s (WAIT_TIMEOUT_SECONDS=5)`);
      expect(r.exitCode).not.toBe(0);
      expect(r.output).toMatch(c.expect);
      expect(r.output).toMatch(new RegExp(`docker-entrypoint: not starting ${c.role}: its data stores did not answer within 5s`));
      expect(r.output).not.toContain(SECRET_PASSWORD);
      expect(r.output).not.toMatch(/listening|worker started|migrations applied/);
      // 5 s wait + one 2 s probe timeout + container start and stop on a busy machine.
      expect(r.ms).toBeLessThan(25_000);
    });
  });

  test('a bad WAIT_TIMEOUT_SECONDS is refused before anything starts', async () => {
    const r = await runToCompletion([...containerArgs(appEnv('ct_badwait', { WAIT_TIMEOUT_SECONDS: 'soon' })), IMAGE, 'api']);
    expect(r.exitCode).toBe(2);
    expect(r.output).toMatch(/WAIT_TIMEOUT_SECONDS must be a whole number of seconds, got "soon"/);
  });

  test('migrate waits for PostgreSQL only, applies the migrations and exits 0; migrate --wait then passes', async () => {
    const schema = uniqueName('ct_migrate');
    // Redis is unreachable on purpose: migrate must not wait for it.
    const env = appEnv(schema, { REDIS_URL: 'redis://127.0.0.1:1', WAIT_TIMEOUT_SECONDS: '10' });
    const r = await runToCompletion([...containerArgs(env), IMAGE, 'migrate']);
    expect(r.output).toMatch(/PostgreSQL at db:5432 is up/);
    expect(r.output).not.toMatch(/Redis/);
    expect(r.output).toMatch(/migrations applied/);
    expect(r.exitCode).toBe(0);

    const status = await migrationStatus(schema);
    expect(status.output).toMatch(/database schema is up to date/);
    expect(status.exitCode).toBe(0);

    const waited = await runToCompletion([...containerArgs(env), IMAGE, 'migrate', '--wait', '--timeout', '30']);
    expect(waited.output).toMatch(/database schema is at the image head/);
    expect(waited.exitCode).toBe(0);
  });

  test('api: tini → node `easeemail api`, migrations applied because RUN_MIGRATIONS=true, healthy, SIGTERM → exit 0', async () => {
    const schema = uniqueName('ct_api');
    const api = await start(['api'], appEnv(schema, { RUN_MIGRATIONS: 'true' }));
    await waitUntilHealthy(api, 'api');

    const procs = await processes(api);
    const pid1 = procs.find((p) => p.pid === 1)!;
    expect(pid1.argv).toEqual(['tini', '--', 'docker-entrypoint.sh', 'api']);
    // The entrypoint exec'ed: Node is tini's direct child (no shell in between to swallow SIGTERM).
    const node = procs.find((p) => p.argv.includes('api') && p.argv[0] === 'node');
    expect(node).toBeDefined();
    expect(node!.ppid).toBe(1);
    expect(node!.argv.slice(1)).toEqual(['/usr/local/bin/easeemail', 'api']);
    // The image's HEALTHCHECK finds the api role by itself.
    const hc = await exec(api, ['docker-entrypoint.sh', 'healthcheck']);
    expect(hc.code).toBe(0);

    expect(await logs(api)).toMatch(/migrations done \(RUN_MIGRATIONS=true\)/);
    expect((await migrationStatus(schema)).exitCode).toBe(0);

    const stop = await stopGracefully(api);
    report(`api: docker stop -t 30 → exit ${stop.exitCode} in ${(stop.ms / 1000).toFixed(1)} s`);
    expect(stop.exitCode).toBe(0);
    expect(stop.ms).toBeLessThan(30_000);
    const out = await logs(api);
    expect(out).toMatch(/"reason":"SIGTERM".*"msg":"shutting down"/);
    expect(out).toMatch(/"clean":true.*"msg":"stopped"/);
  });

  test('worker: never migrates (even with RUN_MIGRATIONS=true), serves its health port, SIGTERM → exit 0', async () => {
    const schema = uniqueName('ct_worker');
    const worker = await start(['worker'], appEnv(schema, { RUN_MIGRATIONS: 'true' }));
    await waitUntilHealthy(worker, 'worker');
    const hc = await exec(worker, ['docker-entrypoint.sh', 'healthcheck']);
    expect(hc.code).toBe(0);
    // The api-only port is not served: the HEALTHCHECK picked the worker role, not the api default.
    expect((await exec(worker, ['easeemail', 'healthcheck', 'api'])).code).not.toBe(0);

    const status = await migrationStatus(schema);
    expect(status.output).toMatch(/migration\(s\) not applied/);
    expect(status.exitCode).toBe(1);

    const stop = await stopGracefully(worker);
    report(`worker: docker stop -t 30 → exit ${stop.exitCode} in ${(stop.ms / 1000).toFixed(1)} s`);
    expect(stop.exitCode).toBe(0);
    expect(stop.ms).toBeLessThan(30_000);
    expect(await logs(worker)).toMatch(/"clean":true.*"msg":"stopped"/);
  });

  test('SIGTERM while still waiting for the data stores stops the container at once, not at the kill deadline', async () => {
    const waiting = await start(['api'], appEnv('ct_waiting', { DATABASE_URL: databaseUrl('ct_waiting', '127.0.0.1:1'), WAIT_TIMEOUT_SECONDS: '120' }));
    await eventually(async () => ((await processes(waiting)).some((p) => p.argv.includes('wait')) ? true : undefined), 'the entrypoint to be waiting', {
      ...POLL,
      timeoutMs: 30_000,
      describe: () => logs(waiting),
    });
    const stop = await stopGracefully(waiting);
    report(`api still waiting: docker stop -t 30 → exit ${stop.exitCode} in ${(stop.ms / 1000).toFixed(1)} s`);
    expect(stop.ms).toBeLessThan(10_000);
  });

  test('other commands pass through: easeemail subcommands, executables on PATH, unknown commands', async () => {
    const schema = uniqueName('ct_cli');
    expect((await runToCompletion([...containerArgs(appEnv(schema)), IMAGE, 'migrate'])).exitCode).toBe(0);

    const created = await runToCompletion([...containerArgs(appEnv(schema)), IMAGE, 'api-keys', 'create', '--name', 'entrypoint-test', '--scopes', 'emails:send', '--json']);
    expect(created.exitCode).toBe(0);
    expect(JSON.parse(created.output.trim().split('\n').pop()!)).toMatchObject({ name: 'entrypoint-test', scopes: ['emails:send'], key: expect.stringMatching(/^ee_/) });

    const listed = await runToCompletion([...containerArgs(appEnv(schema)), IMAGE, 'api-keys', 'list']);
    expect(listed.exitCode).toBe(0);
    expect(listed.output).toMatch(/entrypoint-test/);

    const node = await runToCompletion([IMAGE, 'node', '-e', 'console.log(`uid=${process.getuid()} env=${process.env.NODE_ENV}`)']);
    expect(node.exitCode).toBe(0);
    expect(node.output.trim()).toBe('uid=1000 env=production');

    const unknown = await runToCompletion([IMAGE, 'frobnicate']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.output).toMatch(/unknown command "frobnicate"/);
  });
});
