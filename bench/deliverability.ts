/**
 * `npm run bench:deliverability`: the return path's figures on this machine, from one run, with
 * the roles as separate processes (the real CLI, compiled) on loopback:
 *
 *   inbound     DSNs/s through `easeemail inbound` (parse, classify, report row, suppression,
 *               status, event), next to a bare smtp-server that only reads the message, same load
 *                                                                              ≥ 500 DSNs/s
 *   suppression the suppression check's CPU per email, against the worker's CPU per email
 *               (both measured in this run, with 10,000 addresses on the list)  ≤ 5 %
 *
 * Options (env): BENCH_DSNS (3000), BENCH_CONNECTIONS (8), BENCH_EMAILS (3000), BENCH_JSON=path.
 */
import { randomUUID } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Env } from '../app/config';
import { createVerp, deriveVerpKey } from '../app/deliverability/verp';
import { normaliseAll } from '../app/suppressions/address';
import { createSuppressionCheck } from '../app/suppressions/check';
import { reportFixture } from '../test/fixtures/reports';
import { freePort, startCli, stopProcess, waitForHttp } from '../test/support/processes';
import { describeMachine, fmt, loadAverage, printReport, runBenchmark, type ResultRow } from './lib/report';
import { processCpuMs } from './lib/rss';
import { startSmtpSink } from './lib/smtp-sink';
import { benchStack, compiledMain } from './lib/stack';

const DSNS = Number(process.env.BENCH_DSNS ?? 3000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const EMAILS = Number(process.env.BENCH_EMAILS ?? 3000);
const LIST_SIZE = 10_000;
const BOUNCE_DOMAIN = 'bounces.bench.test';
const log = (msg: string) => console.error(`[bench:deliverability] ${msg}`);

interface Dsn {
  to: string;
  raw: Buffer;
}

/** Sends every DSN over `CONNECTIONS` pooled SMTP connections; resolves with DSNs per second. */
async function blast(port: number, dsns: Dsn[]): Promise<{ perSecond: number; failed: number }> {
  const transport = nodemailer.createTransport({ pool: true, host: '127.0.0.1', port, ignoreTLS: true, maxConnections: CONNECTIONS, maxMessages: Infinity, logger: false });
  let failed = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONNECTIONS * 2 }, async () => {
      while (next < dsns.length) {
        const d = dsns[next++];
        await transport.sendMail({ envelope: { from: '', to: [d.to] }, raw: d.raw }).catch(() => failed++);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  transport.close();
  return { perSecond: dsns.length / seconds, failed };
}

async function main() {
  const loadAtStart = loadAverage();
  const rows: ResultRow[] = [];
  const figures: Record<string, number> = {};
  const sink = await startSmtpSink();
  const stack = await benchStack('bench_deliverability', { SMTP_URL: sink.url, BOUNCE_DOMAIN, RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000' });
  const verp = createVerp({ key: deriveVerpKey(stack.env.config.encryptionKey!), domain: BOUNCE_DOMAIN });
  try {
    // --- emails to bounce: accepted by the api, sent by the worker to the sink -------------------
    const db = stack.env.db;
    await db.$executeRawUnsafe(
      `INSERT INTO "suppressions" ("id", "applicationId", "address", "reason", "createdAt")
       SELECT gen_random_uuid(), (SELECT "id" FROM "applications" WHERE "name" = 'default'), 'listed' || g || '@example.net', 'manual', now()
       FROM generate_series(1, ${LIST_SIZE}) g`,
    );
    const api = await stack.start('api');
    const ids: string[] = [];
    for (let i = 0; i < EMAILS; i += 100) {
      const batch = Array.from({ length: Math.min(100, EMAILS - i) }, (_, k) => ({ from: 'Bench <bench@example.com>', to: [`user${i + k}@example.org`], subject: `Order ${i + k}`, text: 'On its way.' }));
      const res = await fetch(`${api.url}/v1/emails/batch`, { method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(batch) });
      if (res.status !== 202) throw new Error(`batch refused: ${res.status} ${await res.text()}`);
      ids.push(...((await res.json()) as { data: { id: string }[] }).data.map((d) => d.id));
    }
    log(`${ids.length} emails accepted; delivering them with the worker (suppression list of ${LIST_SIZE})`);
    const worker = await stack.start('worker');
    const workerCpuStart = processCpuMs(worker.pid);
    const deliveryStarted = Date.now();
    await sink.waitForCount(EMAILS, 300_000);
    // The sink counts on arrival; the worker records `sent` right after. Wait for the rows.
    for (;;) {
      const sent = await db.email.count({ where: { status: 'sent' } });
      if (sent >= EMAILS) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const workerCpuPerEmail = (processCpuMs(worker.pid) - workerCpuStart) / EMAILS;
    figures.workerCpuMsPerEmail = workerCpuPerEmail;
    await worker.stop();

    // The check alone, as the worker runs it: WORKER_CONCURRENCY (10) jobs at a time, one recipient each.
    const check = createSuppressionCheck({ db });
    const appId = (await db.$queryRawUnsafe<{ id: string }[]>(`SELECT "id"::text FROM "applications" WHERE "name" = 'default'`))[0].id;
    const recipients = ids.map((_, i) => normaliseAll([`user${i}@example.org`]));
    for (let i = 0; i < 200; i++) await check.suppressedAmong(appId, recipients[i]); // warm-up
    const cpu0 = process.cpuUsage();
    let nextCheck = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (nextCheck < recipients.length) await check.suppressedAmong(appId, recipients[nextCheck++]);
      }),
    );
    const used = process.cpuUsage(cpu0);
    const checkCpuPerEmail = (used.user + used.system) / 1000 / recipients.length;
    const share = checkCpuPerEmail / workerCpuPerEmail;
    figures.suppressionCheckCpuMsPerEmail = checkCpuPerEmail;
    figures.suppressionCheckShare = share;
    rows.push({
      measure: `worker CPU per email (delivery of ${fmt.int(EMAILS)} emails, ${Date.now() - deliveryStarted} ms)`,
      value: fmt.ms(workerCpuPerEmail),
      note: 'claim, suppression check, compose, SMTP, outcome; the same-run baseline of the row below',
    });
    rows.push({
      measure: `suppression check CPU per email (10 concurrent, ${fmt.int(LIST_SIZE)} listed addresses)`,
      value: `${fmt.ms(checkCpuPerEmail)} = ${(share * 100).toFixed(1)} % of the worker's`,
      target: '≤ 5 %',
      met: share <= 0.05,
    });

    // --- DSNs: a bare smtp-server first, then the inbound role ------------------------------------
    const dsns: Dsn[] = ids.slice(0, DSNS).map((id, i) => {
      const returnPath = verp.returnPath(id);
      const raw = reportFixture('exim-hard-bounce', { returnPath, emailId: id }).toString('latin1').replace(/nobody@example\.net/g, `user${i}@example.org`);
      return { to: returnPath, raw: Buffer.from(raw, 'latin1') };
    });
    sink.reset();
    const baseline = await blast(Number(new URL(sink.url).port), dsns.map((d) => ({ ...d, raw: Buffer.concat([Buffer.from(`X-EaseEmail-Id: ${randomUUID()}\r\n`), d.raw]) })));
    figures.baselineDsnsPerSecond = baseline.perSecond;
    rows.push({ measure: `baseline: bare smtp-server reading each message, ${CONNECTIONS} connections`, value: `${fmt.int(baseline.perSecond)} DSNs/s`, note: `${fmt.int(DSNS)} messages` });

    const main = await compiledMain();
    const smtpPort = await freePort();
    const healthPort = await freePort();
    const env: Env = { ...stack.env.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', BOUNCE_DOMAIN, INBOUND_PORT: String(smtpPort), INBOUND_HEALTH_PORT: String(healthPort) };
    const inbound = startCli(['inbound'], env, { main });
    try {
      await waitForHttp(`http://127.0.0.1:${healthPort}/health/ready`, { timeoutMs: 60_000 });
      const cpu = processCpuMs(inbound.child.pid!);
      const result = await blast(smtpPort, dsns);
      const inboundCpu = (processCpuMs(inbound.child.pid!) - cpu) / DSNS;
      const bounced = await db.email.count({ where: { status: 'bounced' } });
      figures.inboundDsnsPerSecond = result.perSecond;
      figures.inboundCpuMsPerDsn = inboundCpu;
      rows.push({
        measure: `easeemail inbound: DSNs → report, suppression, bounced, event; ${CONNECTIONS} connections`,
        value: `${fmt.int(result.perSecond)} DSNs/s`,
        target: '≥ 500 DSNs/s',
        met: result.perSecond >= 500 && result.failed === 0 && bounced === DSNS,
        note: `${fmt.ratio(result.perSecond / baseline.perSecond)} of the baseline; CPU ${fmt.ms(inboundCpu)} a DSN; ${fmt.int(bounced)} emails bounced, ${result.failed} refused`,
      });
    } finally {
      await stopProcess(inbound, 'SIGTERM');
    }
  } finally {
    await stack.close();
    await sink.close();
  }
  printReport({
    title: 'EaseEmail deliverability benchmark',
    context: [describeMachine(), `load average at start ${loadAtStart}, at end ${loadAverage()}`, `runtime: ${(await compiledMain()) ? 'compiled' : 'tsx'}`],
    rows,
    figures,
  });
}

runBenchmark(main);
