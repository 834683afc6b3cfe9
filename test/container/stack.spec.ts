/**
 * The whole stack from compose/compose.yaml, for real: `docker-compose up -d --build` (the
 * README's quick start, under a unique project name and free loopback ports), every service
 * healthy, an API key created inside the api container, an email through the API into the mail
 * catcher, a signed webhook to a receiver on the project network, the worker stopped with
 * `stop -t 30` in the middle of 300 emails and started again, the worker scaled to 3, and
 * `down -v -t 10`.
 *
 * The tests run in order and share the stack; each one states what it needs from the previous.
 */
import { Webhook } from 'standardwebhooks';
import {
  COMPOSE_FILE,
  ComposeProject,
  IMAGE,
  type ContainerState,
  docker,
  eventually,
  POLL,
  http,
  logs,
  mapLimit,
  removeContainers,
  report,
  run,
  runDetached,
  uniqueName,
} from './support';

let project: ComposeProject;
let apiKey = '';
const receiver = uniqueName('eecthooks');
const runId = uniqueName('r');

const api = (path: string) => `http://127.0.0.1:${project.ports.api}${path}`;
const mailpit = (path: string) => `http://127.0.0.1:${project.ports.mailpit}${path}`;
const auth = () => ({ authorization: `Bearer ${apiKey}` });

interface MailpitMessage {
  ID: string;
  Subject: string;
  From: { Address: string };
  To: { Address: string }[];
}

/** Messages in the mail catcher whose subject contains `tag`. */
async function mailsTagged(tag: string): Promise<MailpitMessage[]> {
  const r = await http(mailpit(`/api/v1/search?query=${encodeURIComponent(`subject:${tag}`)}&limit=5000`));
  if (r.status !== 200) throw new Error(`mailpit search: HTTP ${r.status} ${r.text}`);
  return r.body.messages;
}

/**
 * Sends one email as a well-behaved client: a 503 (a store answering slowly, e.g. PostgreSQL
 * connections taking over the pool's 4 s wait on a loaded machine) is retried after its
 * Retry-After, as the api asks; nothing is stored by a 503, so a retry cannot duplicate.
 */
async function sendEmail(subject: string, to = 'someone@example.com'): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const r = await http(api('/v1/emails'), { method: 'POST', headers: auth(), json: { to, subject, text: `body of ${subject}` } });
    if (r.status === 202) return r.body.id;
    if (r.status !== 503 || attempt === 5) throw new Error(`POST /v1/emails: HTTP ${r.status} ${r.text}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(Number(r.headers.get('retry-after')) || 1, 5) * 1000));
  }
}

/** A counter from a worker's /metrics, read inside its container (no port is published). */
async function workerDeliveries(container: string): Promise<number> {
  const script = 'fetch("http://127.0.0.1:8001/metrics").then((r) => r.text()).then((t) => console.log(t))';
  const r = await docker(['exec', container, 'node', '-e', script]);
  const m = r.stdout.match(/^easeemail_email_deliveries_total\{[^}]*outcome="sent"[^}]*\} (\d+)/m);
  return m ? Number(m[1]) : 0;
}

async function serviceLogs(): Promise<string> {
  const r = await run('docker-compose', ['-p', project.name, '-f', COMPOSE_FILE, 'logs', '--no-color', '--tail', '40'], { env: project.env });
  return r.stdout.slice(-8000);
}

/** The api's error-level log lines (pino level 50 and above), for failure messages. */
async function apiErrors(): Promise<string> {
  const [container] = await project.containers('api');
  return (await logs(container.id))
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l))
    .slice(-5)
    .join('\n')
    .slice(0, 6000);
}

beforeAll(async () => {
  project = await ComposeProject.create('eectstack');
  const up = await project.compose(['up', '-d', '--build'], { timeoutMs: 15 * 60_000 });
  report(`docker-compose up -d --build: ${(up.ms / 1000).toFixed(1)} s (project ${project.name}, api on 127.0.0.1:${project.ports.api})`);
}, 16 * 60_000);

afterAll(async () => {
  await removeContainers([receiver]);
  await project?.down();
}, 240_000);

describe('compose/compose.yaml', () => {
  test('every service becomes healthy; migrate ran once and exited 0', async () => {
    const t0 = Date.now();
    const states = await project.waitHealthy({ timeoutMs: 180_000, expect: { db: 1, redis: 1, mailpit: 1, migrate: 1, api: 1, worker: 1 } });
    report(`all services healthy ${((Date.now() - t0) / 1000).toFixed(1)} s after up returned`);
    const by = (service: string) => states.find((s) => s.service === service) as ContainerState;
    expect(by('migrate')).toMatchObject({ status: 'exited', exitCode: 0 });
    for (const service of ['db', 'redis', 'mailpit', 'api', 'worker']) expect(by(service)).toMatchObject({ status: 'running', health: 'healthy' });
    expect(await logs(by('migrate').id)).toMatch(/migrations applied|nothing to migrate/);
  });

  test('an API key created inside the api container authenticates', async () => {
    const r = await project.compose(['exec', '-T', 'api', 'easeemail', 'api-keys', 'create', '--name', `container-suite-${runId}`, '--scopes', 'emails:send,emails:read,webhooks:manage,events:publish']);
    apiKey = r.stdout.match(/^(ee_\S+)$/m)?.[1] ?? '';
    expect(apiKey).toMatch(/^ee_/);
    expect((await http(api('/v1/emails'), { headers: { authorization: 'Bearer ee_not_a_real_key_0000000000' } })).status).toBe(401);
    expect((await http(api('/v1/emails?limit=1'), { headers: auth() })).status).toBe(200);
  });

  test('an email sent through the API is delivered to the mail catcher', async () => {
    const subject = `hello ${runId}`;
    const id = await sendEmail(subject, 'first.reader@example.com');
    const [message] = await eventually(async () => ((await mailsTagged(runId)).length > 0 ? mailsTagged(runId) : undefined), 'the email in mailpit', {
      ...POLL,
      timeoutMs: 60_000,
      describe: serviceLogs,
    });
    expect(message.Subject).toBe(subject);
    expect(message.To.map((t) => t.Address)).toEqual(['first.reader@example.com']);
    expect(message.From.Address).toBe('dev@easeemail.test'); // MAIL_FROM of the compose file
    const email = await eventually(async () => {
      const r = await http(api(`/v1/emails/${id}`), { headers: auth() });
      return r.body?.status === 'sent' ? r.body : undefined;
    }, 'the email to be sent', { ...POLL, timeoutMs: 30_000 });
    expect(email.attempts.length).toBeGreaterThanOrEqual(1);
  });

  test('a published event reaches a webhook receiver on the project network, with a valid signature', async () => {
    // The receiver prints each request as one JSON line; the test reads them from its log.
    const receiverCode =
      'require("http").createServer((req, res) => { const chunks = []; req.on("data", (c) => chunks.push(c)).on("end", () => {' +
      ' console.log(JSON.stringify({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") })); res.statusCode = 204; res.end(); }); })' +
      '.listen(8080, () => console.log("listening"))';
    await runDetached(receiver, ['--network', project.network('internal'), '--network-alias', 'hooks', IMAGE, 'node', '-e', receiverCode]);
    await eventually(async () => ((await logs(receiver)).includes('listening') ? true : undefined), 'the receiver to listen', { ...POLL, timeoutMs: 30_000, intervalMs: 300 });

    const eventType = `container.suite.${runId}`;
    const created = await http(api('/v1/webhook-endpoints'), { method: 'POST', headers: auth(), json: { url: 'http://hooks:8080/easeemail', eventTypes: [eventType] } });
    expect(created.status).toBe(201);
    const secret: string = created.body.secret;
    expect(secret).toMatch(/^whsec_/);

    const payload = { order: 42, runId };
    const published = await http(api('/v1/events'), { method: 'POST', headers: auth(), json: { type: eventType, payload } });
    expect(published.status).toBe(202);

    const request = await eventually(
      async () => {
        const lines = (await logs(receiver)).split('\n').filter((l) => l.startsWith('{'));
        return lines.length > 0 ? (JSON.parse(lines[0]) as { url: string; headers: Record<string, string>; body: string }) : undefined;
      },
      'the webhook at the receiver',
      { ...POLL, timeoutMs: 60_000, describe: serviceLogs },
    );
    expect(request.url).toBe('/easeemail');
    const verified = new Webhook(secret).verify(request.body, request.headers) as { type: string; data: unknown };
    expect(verified).toMatchObject({ type: eventType });
    expect(JSON.stringify(verified)).toContain(runId);
    // The check can fail: a changed body does not verify.
    expect(() => new Webhook(secret).verify(request.body.replace('42', '43'), request.headers)).toThrow();

    // The receiver has the request, so the worker records the outcome at once; should this wait
    // ever time out again (it did once in CI, with no record of the delivery's state), the
    // message carries the delivery as the api shows it (status, attempts, errors) and the logs.
    let lastSeen: unknown;
    const event = await eventually(
      async () => {
        const r = await http(api(`/v1/events/${published.body.id}`), { headers: auth() });
        lastSeen = r.body ?? r.text;
        return r.body?.deliveries?.[0]?.status === 'delivered' ? r.body : undefined;
      },
      'the delivery to be recorded',
      { ...POLL, timeoutMs: 120_000, describe: async () => `last seen: ${JSON.stringify(lastSeen)}\n${await serviceLogs()}` },
    );
    expect(event.deliveries[0].id).toBe(request.headers['webhook-id']);
  });

  test('300 emails: the worker stopped with stop -t 30 mid-way and started again, all 300 are delivered', async () => {
    const tag = `bulk-${runId}`;
    const subjects = Array.from({ length: 300 }, (_, i) => `${tag} #${String(i).padStart(3, '0')}`);
    // The first half is still being accepted (and delivered) when the worker stops; the second half
    // is accepted while no worker runs. Either way all 300 must arrive once it is back.
    const t0 = Date.now();
    const firstHalf = mapLimit(subjects.slice(0, 150), 10, (s, i) => sendEmail(s, `reader${i}@example.com`));
    await eventually(async () => ((await mailsTagged(tag)).length > 0 ? true : undefined), 'the first bulk emails to arrive', { ...POLL, timeoutMs: 60_000, intervalMs: 100 });
    const [worker] = await project.containers('worker');
    const stop = await project.compose(['stop', '-t', '30', 'worker']);
    const [stopped] = await project.containers('worker');
    const ids = [...(await firstHalf), ...(await mapLimit(subjects.slice(150), 10, (s, i) => sendEmail(s, `reader${150 + i}@example.com`)))];
    report(`300 emails accepted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const deliveredAtStop = new Set((await mailsTagged(tag)).map((m) => m.Subject)).size;
    report(`worker stopped (stop -t 30) in ${(stop.ms / 1000).toFixed(1)} s, exit code ${stopped.exitCode}; ${deliveredAtStop}/300 delivered while it ran`);
    expect(stopped.id).toBe(worker.id);
    expect(stopped.status).toBe('exited');
    expect(stopped.exitCode).toBe(0); // SIGTERM → drained, not killed
    expect(stop.ms).toBeLessThan(30_000);
    expect(deliveredAtStop).toBeGreaterThan(0);
    expect(deliveredAtStop).toBeLessThanOrEqual(150);
    // Nothing is delivered while no worker runs.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(new Set((await mailsTagged(tag)).map((m) => m.Subject)).size).toBe(deliveredAtStop);

    const t1 = Date.now();
    await project.compose(['start', 'worker']);
    await project.waitHealthy({ timeoutMs: 120_000, expect: { worker: 1 } });
    const delivered = await eventually(
      async () => {
        const messages = await mailsTagged(tag);
        return new Set(messages.map((m) => m.Subject)).size === 300 ? messages : undefined;
      },
      'all 300 in mailpit',
      { ...POLL, timeoutMs: 180_000, describe: async () => `${new Set((await mailsTagged(tag)).map((m) => m.Subject)).size}/300 delivered\n${await serviceLogs()}` },
    );
    report(`after the restart the other ${300 - deliveredAtStop} arrived in ${((Date.now() - t1) / 1000).toFixed(1)} s; messages in mailpit: ${delivered.length} (duplicates: ${delivered.length - 300})`);
    expect([...new Set(delivered.map((m) => m.Subject))].sort()).toEqual(subjects);
    // A graceful stop lets active jobs finish: nothing is sent twice.
    expect(delivered.length).toBe(300);

    const answers = await mapLimit(ids, 10, async (id) => {
      const r = await http(api(`/v1/emails/${id}`), { headers: auth() });
      return r.status === 200 ? r.body.status : `HTTP ${r.status} ${r.text.slice(0, 300)}`;
    });
    const notSent = answers.filter((a) => a !== 'sent');
    if (notSent.length > 0) report(`GET /v1/emails/:id answers other than "sent": ${notSent.length}; api errors:\n${await apiErrors()}`);
    expect(notSent).toEqual([]);
  });

  test('the worker scales to 3 and the replicas share the queue', async () => {
    await project.compose(['up', '-d', '--scale', 'worker=3']);
    const states = await project.waitHealthy({ timeoutMs: 120_000, expect: { worker: 3 } });
    const workers = states.filter((s) => s.service === 'worker');
    expect(workers).toHaveLength(3);
    for (const w of workers) expect(w).toMatchObject({ status: 'running', health: 'healthy' });

    const before = await Promise.all(workers.map((w) => workerDeliveries(w.id)));
    const tag = `scaled-${runId}`;
    await mapLimit(Array.from({ length: 60 }, (_, i) => `${tag} #${i}`), 10, (s) => sendEmail(s));
    await eventually(async () => (new Set((await mailsTagged(tag)).map((m) => m.Subject)).size === 60 ? true : undefined), '60 emails in mailpit', {
      ...POLL,
      timeoutMs: 120_000,
      describe: serviceLogs,
    });
    const after = await Promise.all(workers.map((w) => workerDeliveries(w.id)));
    const share = after.map((n, i) => n - before[i]);
    report(`60 emails across 3 workers: ${share.join(' / ')}`);
    expect(share.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(60);
    expect(share.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  });

  test('down -v -t 10 removes every container, network and volume of the project', async () => {
    await removeContainers([receiver]);
    const down = await project.down();
    report(`docker-compose down -v -t 10: ${(down.ms / 1000).toFixed(1)} s`);
    const label = `label=com.docker.compose.project=${project.name}`;
    expect((await docker(['ps', '-a', '-q', '--filter', label])).stdout.trim()).toBe('');
    const networks = (await docker(['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n');
    expect(networks.filter((n) => n.startsWith(`${project.name}_`))).toEqual([]);
    const volumes = (await docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout.split('\n');
    expect(volumes.filter((v) => v.startsWith(`${project.name}_`))).toEqual([]);
  });
});
