/**
 * Memory inside the limits (issue 10), for real: the compose stack runs under the memory limits
 * of compose/compose.yaml, with the V8 heap caps (NODE_OPTIONS) and the Redis flags the model
 * derives. Load goes through the API (large attachments, then a flood of batches that the worker
 * delivers), and afterwards no service was OOM-killed or restarted.
 *
 * Why more than `State.OOMKilled`: under the lab's podman with cgroup v1 a container killed by the
 * kernel's OOM killer exits 137 with OOMKilled still false. So each container must also still be
 * the same running container (same StartedAt, RestartCount 0), and its memory cgroup must count no
 * OOM kill (`oom_kill` in memory.oom_control, read from inside the container).
 */
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { heapLimitMiB, nodeOptions, YOUNG_GENERATION_MIB } from '../../charts/model';
import { COMPOSE_FILE, ComposeProject, docker, eventually, http, mapLimit, report, uniqueName } from './support';

const MiB = 2 ** 20;
/** The services whose limits the load presses on; mailpit is the test's mail sink, not under test. */
const WATCHED = ['api', 'worker', 'redis', 'db'] as const;
const BIG_EMAILS = 6;
/** Decoded attachment size; the mail sink (a 128 MiB stand-in that keeps messages in memory) must hold them too. */
const ATTACHMENT_BYTES = 2 * MiB;
const BATCHES = 30;
const BATCH_SIZE = 100;

let project: ComposeProject;
let apiKey = '';
const runId = uniqueName('m');
const started: Record<string, string> = {};

const api = (path: string) => `http://127.0.0.1:${project.ports.api}${path}`;
const auth = () => ({ authorization: `Bearer ${apiKey}` });

/** Memory limits (bytes) and environments as compose/compose.yaml sets them. */
const composeFile = parse(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, { environment?: Record<string, string>; deploy: { resources: { limits: { memory: string } } } }> };
const limitMiB = (service: string) => Number(/^(\d+)M$/.exec(composeFile.services[service].deploy.resources.limits.memory)![1]);

async function containerOf(service: string): Promise<string> {
  const [c] = await project.containers(service);
  if (!c) throw new Error(`no ${service} container`);
  return c.id;
}

/** Runs a small Node script inside a container of the app image and parses its JSON output. */
async function nodeIn(service: string, script: string): Promise<any> {
  const r = await docker(['exec', await containerOf(service), 'node', '-e', script]);
  return JSON.parse(r.stdout);
}

/** The app process of a container (`easeemail <role>`): its NODE_OPTIONS and peak RSS (VmHWM). */
async function appProcess(role: 'api' | 'worker'): Promise<{ nodeOptions: string; peakRssMiB: number }> {
  const script = `
    const fs = require('fs');
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))) {
      let argv; try { argv = fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0'); } catch { continue; }
      const i = argv.findIndex((a) => a.endsWith('/easeemail') || a.endsWith('/main.js'));
      if (i < 0 || argv[i + 1] !== '${role}') continue;
      const env = fs.readFileSync('/proc/' + pid + '/environ', 'utf8').split('\\0').find((e) => e.startsWith('NODE_OPTIONS=')) || '';
      const hwm = /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'))[1];
      console.log(JSON.stringify({ nodeOptions: env.slice('NODE_OPTIONS='.length), peakRssMiB: Number(hwm) / 1024 }));
      process.exit(0);
    }
    console.log('null');`;
  const found = await nodeIn(role, script);
  if (!found) throw new Error(`no easeemail ${role} process in its container`);
  return found;
}

interface MemoryCgroup {
  oomKills: number;
  peakMiB: number;
  limitMiB: number;
}

/** The container's memory cgroup (v1 in the lab; v2 files as a fallback). */
async function memoryCgroup(service: string): Promise<MemoryCgroup> {
  const script = [
    'value() { cat "$1" 2>/dev/null || echo -1; }',
    'if [ -f /sys/fs/cgroup/memory/memory.oom_control ]; then',
    '  echo "$(sed -n "s/^oom_kill //p" /sys/fs/cgroup/memory/memory.oom_control) $(value /sys/fs/cgroup/memory/memory.max_usage_in_bytes) $(value /sys/fs/cgroup/memory/memory.limit_in_bytes)"',
    'else',
    '  echo "$(sed -n "s/^oom_kill //p" /sys/fs/cgroup/memory.events) $(value /sys/fs/cgroup/memory.peak) $(value /sys/fs/cgroup/memory.max)"',
    'fi',
  ].join('\n');
  const r = await docker(['exec', await containerOf(service), 'sh', '-c', script]);
  const [oomKills, peak, limit] = r.stdout.trim().split(/\s+/).map(Number);
  return { oomKills, peakMiB: peak / MiB, limitMiB: limit / MiB };
}

interface ContainerRecord {
  status: string;
  oomKilled: boolean;
  exitCode: number;
  restarts: number;
  startedAt: string;
}

async function inspect(service: string): Promise<ContainerRecord> {
  const r = await docker(['inspect', '-f', '{{json .State.Status}}\t{{.State.OOMKilled}}\t{{.State.ExitCode}}\t{{.RestartCount}}\t{{json .State.StartedAt}}', await containerOf(service)]);
  const [status, oomKilled, exitCode, restarts, startedAt] = r.stdout.trim().split('\t');
  return { status: JSON.parse(status), oomKilled: oomKilled === 'true', exitCode: Number(exitCode), restarts: Number(restarts), startedAt: JSON.parse(startedAt) };
}

/** Emails the worker has sent, from its /metrics (read inside its container; no port is published). */
async function sentByWorker(): Promise<number> {
  const script = 'fetch("http://127.0.0.1:8001/metrics").then((r) => r.text()).then((t) => { const m = t.match(/^easeemail_email_deliveries_total\\{[^}]*outcome="sent"[^}]*\\} (\\d+)/m); console.log(m ? m[1] : "0"); })';
  return Number(await nodeIn('worker', script));
}

let retried503 = 0;

/**
 * POSTs JSON to the api (loopback only, as `http()`, with room for large bodies on a loaded
 * machine) and retries a 503 after its Retry-After, as the api asks clients to: a store that
 * answers slowly under this load is a 503 by design, and not what this suite measures.
 */
async function postJson(path: string, body: unknown): Promise<{ status: number; body: any; text: string }> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(api(path), {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(180_000),
    });
    const text = await res.text();
    if (res.status !== 503 || attempt === 5) return { status: res.status, body: res.status < 300 ? JSON.parse(text) : undefined, text };
    retried503++;
    await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? '1') * 1000));
  }
}

function email(i: number, extra: Record<string, unknown> = {}) {
  return { to: `reader${i}@example.com`, subject: `${runId} #${i}`, html: `<p>${'memory under load '.repeat(60)}</p>`, tags: [runId], ...extra };
}

/**
 * Waits until migrate exited 0, every other service runs and the api answers /health/ready. Not
 * `waitHealthy`: on a loaded machine the 3 s exec health check can time out a few times in a row
 * (measured 3.1 s for one `easeemail healthcheck` at load 13 on 2 cores), and health is not what
 * this suite is about; exits and restarts are, and those are checked.
 */
async function untilServing(): Promise<void> {
  await eventually(
    async () => {
      const states = await project.containers();
      const migrate = states.find((s) => s.service === 'migrate');
      if (migrate?.status === 'exited' && migrate.exitCode !== 0) throw new Error(`migrate exited ${migrate.exitCode}`);
      if (migrate?.status !== 'exited' || !['db', 'redis', 'mailpit', 'api', 'worker'].every((name) => states.some((s) => s.service === name && s.status === 'running'))) return undefined;
      // A running container is not yet a listening server: a refused connection means "not yet".
      const ready = await http(api('/health/ready')).catch((err: Error) => {
        if (/fetch failed/.test(err.message)) return undefined;
        throw err;
      });
      return ready?.status === 200 ? true : undefined;
    },
    `project ${project.name} to serve`,
    { timeoutMs: 240_000, intervalMs: 2_000, describe: async () => (await project.containers()).map((s) => `${s.name}: ${s.status} ${s.health}`).join('\n') },
  );
}

beforeAll(async () => {
  project = await ComposeProject.create('eectmem');
  // docker-compose gives each engine call 60 s; on a loaded 2-core machine podman's API can take longer.
  project.env.COMPOSE_HTTP_TIMEOUT = '300';
  // The image was built by the global setup; `up` without --build uses it.
  const up = await project.compose(['up', '-d'], { timeoutMs: 10 * 60_000 });
  report(`memory: docker-compose up -d ${(up.ms / 1000).toFixed(1)} s (project ${project.name})`);
  await untilServing();
  const key = await project.compose(['exec', '-T', 'api', 'easeemail', 'api-keys', 'create', '--name', `memory-${runId}`, '--scopes', 'emails:send,emails:read']);
  apiKey = key.stdout.match(/^(ee_\S+)$/m)?.[1] ?? '';
  if (!apiKey) throw new Error(`no API key in:\n${key.stdout}\n${key.stderr}`);
  for (const service of WATCHED) started[service] = (await inspect(service)).startedAt;
}, 15 * 60_000);

afterAll(async () => {
  await project?.down();
}, 240_000);

describe('memory inside the compose limits', () => {
  test('api and worker run with the heap cap the model derived from their limits', async () => {
    for (const role of ['api', 'worker'] as const) {
      const limit = limitMiB(role);
      const cap = heapLimitMiB(limit);
      expect(composeFile.services[role].environment?.NODE_OPTIONS).toBe(nodeOptions(limit));
      expect((await appProcess(role)).nodeOptions).toBe(nodeOptions(limit));
      // What V8 in the image makes of it: the whole heap limit, young generation included.
      const heapLimit = (await nodeIn(role, 'console.log(require("v8").getHeapStatistics().heap_size_limit)')) / MiB;
      report(`memory: ${role} limit ${limit} MiB, --max-old-space-size=${cap}, V8 heap_size_limit ${heapLimit.toFixed(0)} MiB`);
      expect(heapLimit).toBeGreaterThanOrEqual(cap);
      expect(heapLimit).toBeLessThanOrEqual(cap + YOUNG_GENERATION_MIB);
    }
  });

  test('Redis runs with the model\'s memory cap and noeviction', async () => {
    const redis = await containerOf('redis');
    const policy = await docker(['exec', redis, 'redis-cli', 'config', 'get', 'maxmemory-policy']);
    expect(policy.stdout.trim().split('\n')).toEqual(['maxmemory-policy', 'noeviction']);
    const maxmemory = await docker(['exec', redis, 'redis-cli', 'config', 'get', 'maxmemory']);
    const bytes = Number(maxmemory.stdout.trim().split('\n')[1]);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(limitMiB('redis') * MiB);
  });

  test(`load through the API: ${BIG_EMAILS} emails with ${ATTACHMENT_BYTES / MiB} MiB attachments, then ${BATCHES} batches of ${BATCH_SIZE}; no OOM kill, no restart`, async () => {
    const sentBefore = await sentByWorker();
    const t0 = Date.now();
    // Large bodies at once: Buffers and parse copies outside the heap, the api's headroom.
    const content = Buffer.alloc(ATTACHMENT_BYTES, 'EaseEmail memory test. ').toString('base64');
    const big = await mapLimit(Array.from({ length: BIG_EMAILS }, (_, i) => i), BIG_EMAILS, async (i) => {
      const r = await postJson('/v1/emails', email(i, { attachments: [{ filename: `big-${i}.txt`, content, contentType: 'text/plain' }] }));
      return r.status === 202 ? 'accepted' : `HTTP ${r.status} ${r.text.slice(0, 300)}`;
    });
    report(`memory: ${BIG_EMAILS} large emails accepted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(big).toEqual(Array(BIG_EMAILS).fill('accepted'));
    // Then a flood of batches, 8 in flight, while the worker delivers.
    const batches = await mapLimit(Array.from({ length: BATCHES }, (_, b) => b), 8, async (b) => {
      const body = Array.from({ length: BATCH_SIZE }, (_, i) => email(BIG_EMAILS + b * BATCH_SIZE + i));
      const r = await postJson('/v1/emails/batch', body);
      return r.status === 202 ? r.body.data.length : `HTTP ${r.status} ${r.text.slice(0, 300)}`;
    });
    expect(batches).toEqual(Array(BATCHES).fill(BATCH_SIZE));
    const accepted = BIG_EMAILS + BATCHES * BATCH_SIZE;
    report(`memory: ${accepted} emails accepted in ${((Date.now() - t0) / 1000).toFixed(1)} s (${retried503} answers 503, retried)`);

    await eventually(async () => ((await sentByWorker()) - sentBefore >= accepted ? true : undefined), 'the worker to send every email', {
      timeoutMs: 420_000,
      intervalMs: 2_000,
      describe: async () => `sent ${(await sentByWorker()) - sentBefore}/${accepted}\n${(await project.containers()).map((c) => `${c.name}: ${c.status} ${c.exitCode}`).join('\n')}`,
    });
    report(`memory: all ${accepted} sent ${((Date.now() - t0) / 1000).toFixed(1)} s after the load began`);

    for (const role of ['api', 'worker'] as const) {
      const { peakRssMiB } = await appProcess(role);
      const cgroup = await memoryCgroup(role);
      report(`memory: ${role} peak RSS ${peakRssMiB.toFixed(0)} MiB, container peak ${cgroup.peakMiB.toFixed(0)} MiB of ${limitMiB(role)} MiB`);
      expect(peakRssMiB).toBeLessThan(limitMiB(role));
    }
    for (const service of WATCHED) {
      const state = await inspect(service);
      const cgroup = await memoryCgroup(service);
      expect({ service, ...state, oomKillsInCgroup: cgroup.oomKills, limitMiB: Math.round(cgroup.limitMiB) }).toEqual({
        service,
        status: 'running',
        oomKilled: false,
        exitCode: 0,
        restarts: 0,
        startedAt: started[service],
        oomKillsInCgroup: 0,
        limitMiB: limitMiB(service),
      });
    }
  }, 15 * 60_000);
});
