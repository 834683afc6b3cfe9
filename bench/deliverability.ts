/**
 * `npm run bench:deliverability`: the return path's figures on this machine, from one run, with
 * the roles as separate processes (the real CLI, compiled) on loopback:
 *
 *   suppression the worker's CPU per email when its application has 100,000 addresses on the
 *               suppression list (none of them a recipient), against the same worker process
 *               delivering for an application with an empty list, in alternating rounds
 *               (ABBA, so a drift of the machine's load falls on both); and the check alone,
 *               run as the worker runs it, against the worker's CPU per email       ≤ 5 %
 *   inbound     DSNs/s through `easeemail inbound` (parse, classify, report row, suppression,
 *               status, event), next to a bare smtp-server that only reads each message, under
 *               the same load: BENCH_CONNECTIONS concurrent SMTP sessions, each sending
 *               BENCH_MESSAGES_PER_CONNECTION messages back to back with PIPELINING, as an MTA
 *               does (bench/lib/smtp-load.ts, whose own CPU per message is printed)   ≥ 500 DSNs/s
 *
 * Every row notes the load average (1 min) when it was measured: the machine is shared.
 *
 * Options (env): BENCH_EMAILS (3000 per list condition), BENCH_ROUNDS (4 per condition),
 * BENCH_DSNS (3000), BENCH_CONNECTIONS (16), BENCH_MESSAGES_PER_CONNECTION (100),
 * BENCH_CPU_PROF=dir (the api, worker and inbound processes run with `node --cpu-prof` into
 * dir/<role>), BENCH_JSON=path.
 */
import path from 'node:path';
import { Pool } from 'pg';
import type { Env } from '../app/config';
import { createApiKeyService } from '../app/auth/api-keys';
import { statementPoolSettings } from '../app/db/connection';
import { createVerp, deriveVerpKey } from '../app/deliverability/verp';
import { normaliseAll } from '../app/suppressions/address';
import { createSuppressionCheck, SUPPRESSION_CHECK_POOL_SIZE } from '../app/suppressions/check';
import { reportFixture } from '../test/fixtures/reports';
import { freePort, startCli, stopProcess, waitForHttp } from '../test/support/processes';
import { startBareSmtpServer } from './lib/bare-smtp';
import { describeMachine, fmt, loadAverage, loadAverage1, printReport, runBenchmark, type ResultRow } from './lib/report';
import { processCpuMs } from './lib/rss';
import { startSmtpSink } from './lib/smtp-sink';
import { sendSmtpLoad, type SmtpLoadMessage, type SmtpLoadResult } from './lib/smtp-load';
import { benchNodeArgs, benchRuntime, benchStack, compiledMain } from './lib/stack';

const EMAILS = Number(process.env.BENCH_EMAILS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const DSNS = Number(process.env.BENCH_DSNS ?? 3000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PER_CONNECTION = Number(process.env.BENCH_MESSAGES_PER_CONNECTION ?? 100);
const CPU_PROF = process.env.BENCH_CPU_PROF;
const LIST_SIZE = 100_000;
const WARM_UP = 200;
const BOUNCE_DOMAIN = 'bounces.bench.test';
const log = (msg: string) => console.error(`[bench:deliverability] ${msg}`);
const load1 = () => loadAverage1().toFixed(1);

interface SentEmail {
  id: string;
  to: string;
}

async function main() {
  if (DSNS > 2 * EMAILS) throw new Error(`BENCH_DSNS (${DSNS}) is one DSN per email: at most 2 × BENCH_EMAILS (${2 * EMAILS})`);
  const loadAtStart = loadAverage();
  const rows: ResultRow[] = [];
  const figures: Record<string, number> = {};
  const sink = await startSmtpSink();
  const stack = await benchStack('bench_deliverability', { SMTP_URL: sink.url, BOUNCE_DOMAIN });
  const verp = createVerp({ key: deriveVerpKey(stack.env.config.encryptionKey!), domain: BOUNCE_DOMAIN });
  const db = stack.env.db;
  try {
    // --- two applications: one with an empty suppression list, one with LIST_SIZE addresses ----
    const listedApp = await db.application.create({ data: { name: 'bench-listed' } });
    const emptyApp = await db.application.create({ data: { name: 'bench-empty' } });
    const keys = new Map<string, string>();
    for (const app of [listedApp, emptyApp]) keys.set(app.id, (await createApiKeyService({ db }).create({ name: `bench ${app.name}`, scopes: ['admin'], applicationId: app.id })).key);
    await db.$executeRawUnsafe(
      `INSERT INTO "suppressions" ("id", "applicationId", "address", "reason", "createdAt")
       SELECT gen_random_uuid(), '${listedApp.id}'::uuid, 'listed' || g || '@example.net', 'manual', now()
       FROM generate_series(1, ${LIST_SIZE}) g`,
    );
    await db.$executeRawUnsafe(`ANALYZE "suppressions"`);
    const api = await stack.start('api');
    const worker = await stack.start('worker');
    log(`api pid ${api.pid}, worker pid ${worker.pid}; ${LIST_SIZE} addresses listed for ${listedApp.name}, none for ${emptyApp.name}`);

    const sent: SentEmail[] = [];
    let received = 0;
    /** Accepts `n` emails for the application, waits until the worker has recorded them sent; returns the worker's CPU ms. */
    async function deliver(applicationId: string, n: number): Promise<number> {
      const cpu = processCpuMs(worker.pid);
      for (let i = 0; i < n; i += 100) {
        const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) => {
          const to = `user${sent.length + i + k}@example.org`;
          return { from: 'Bench <bench@example.com>', to: [to], subject: `Order ${sent.length + i + k}`, text: 'On its way.' };
        });
        const res = await fetch(`${api.url}/v1/emails/batch`, { method: 'POST', headers: { authorization: `Bearer ${keys.get(applicationId)}`, 'content-type': 'application/json' }, body: JSON.stringify(batch) });
        if (res.status !== 202) throw new Error(`batch refused: ${res.status} ${await res.text()}`);
        const ids = ((await res.json()) as { data: { id: string }[] }).data.map((d) => d.id);
        ids.forEach((id, k) => sent.push({ id, to: batch[k].to[0] }));
      }
      received += n;
      await sink.waitForCount(received, 300_000);
      // The sink counts on arrival; the worker records `sent` right after. Wait for the rows.
      while ((await db.email.count({ where: { status: 'sent' } })) < received) await new Promise((r) => setTimeout(r, 20));
      return processCpuMs(worker.pid) - cpu;
    }

    // --- suppression: the same worker, alternating rounds, empty list vs LIST_SIZE listed -------
    await deliver(emptyApp.id, WARM_UP / 2);
    await deliver(listedApp.id, WARM_UP / 2);
    const perRound = Math.ceil(EMAILS / ROUNDS);
    const cpu = { empty: [] as number[], listed: [] as number[] };
    const loads: string[] = [];
    log(`${ROUNDS} rounds of ${perRound} emails per list, alternating (ABBA)`);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (['empty', 'listed'] as const) : (['listed', 'empty'] as const);
      for (const which of order) cpu[which].push((await deliver(which === 'empty' ? emptyApp.id : listedApp.id, perRound)) / perRound);
      loads.push(load1());
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const emptyCpu = mean(cpu.empty);
    const listedCpu = mean(cpu.listed);
    const added = listedCpu / emptyCpu - 1;
    figures.workerCpuMsPerEmailEmptyList = emptyCpu;
    figures.workerCpuMsPerEmailListed = listedCpu;
    figures.suppressionListAddedShare = added;
    const spread = (xs: number[]) => `${fmt.ms(Math.min(...xs))} to ${fmt.ms(Math.max(...xs))}`;
    rows.push({
      measure: `worker CPU per email, application with an empty suppression list (${ROUNDS} rounds of ${fmt.int(perRound)})`,
      value: fmt.ms(emptyCpu),
      note: `rounds ${spread(cpu.empty)}; claim, suppression check, compose, SMTP, outcome; load ${loads.join(', ')}`,
    });
    rows.push({
      measure: `the same worker, application with ${fmt.int(LIST_SIZE)} listed addresses (not the recipients), alternating rounds`,
      value: `${fmt.ms(listedCpu)} = ${added >= 0 ? '+' : ''}${(added * 100).toFixed(1)} %`,
      target: '≤ +5 %',
      met: added <= 0.05,
      note: `rounds ${spread(cpu.listed)}`,
    });
    await worker.stop();

    // The check alone, as the worker runs it: WORKER_CONCURRENCY (10) jobs at a time, one recipient each.
    const checkPool = new Pool(statementPoolSettings(stack.env.config.databaseUrl, SUPPRESSION_CHECK_POOL_SIZE));
    const check = createSuppressionCheck({ pool: checkPool });
    const recipients = sent.map((s) => normaliseAll([s.to]));
    for (let i = 0; i < 200; i++) await check.suppressedAmong(listedApp.id, recipients[i]); // warm-up
    const cpu0 = process.cpuUsage();
    let nextCheck = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (nextCheck < recipients.length) await check.suppressedAmong(listedApp.id, recipients[nextCheck++]);
      }),
    );
    const used = process.cpuUsage(cpu0);
    await checkPool.end();
    const checkCpuPerEmail = (used.user + used.system) / 1000 / recipients.length;
    const share = checkCpuPerEmail / emptyCpu;
    figures.suppressionCheckCpuMsPerEmail = checkCpuPerEmail;
    figures.suppressionCheckShare = share;
    rows.push({
      measure: `suppression check alone, as the worker runs it (10 concurrent, ${fmt.int(LIST_SIZE)} listed), ${fmt.int(recipients.length)} emails`,
      value: `${fmt.ms(checkCpuPerEmail)} = ${(share * 100).toFixed(1)} % of the worker's`,
      target: '≤ 5 %',
      met: share <= 0.05,
      note: `load ${load1()}`,
    });

    // --- DSNs: a bare smtp-server, then the inbound role, under the same SMTP load ---------------
    const dsnOf = (s: SentEmail): SmtpLoadMessage => {
      const returnPath = verp.returnPath(s.id);
      const raw = reportFixture('exim-hard-bounce', { returnPath, emailId: s.id }).toString('latin1').replace(/nobody@example\.net/g, s.to);
      return { from: '', to: [returnPath], raw: Buffer.from(raw, 'latin1') };
    };
    const warmDsns = sent.slice(0, WARM_UP).map(dsnOf);
    const dsns = sent.slice(WARM_UP, WARM_UP + DSNS).map(dsnOf);
    const smtpLoad = (port: number, messages: SmtpLoadMessage[]) => sendSmtpLoad(messages, { port, connections: CONNECTIONS, messagesPerConnection: PER_CONNECTION });
    const describe = (r: SmtpLoadResult, serverCpuMs: number) =>
      `server CPU ${fmt.ms(serverCpuMs)} a message, client ${fmt.ms(r.clientCpuMsPerMessage)}; ${fmt.int(r.sessions)} sessions${Object.keys(r.refused).length ? `; refused ${JSON.stringify(r.refused)}` : ''}; load ${load1()}`;

    const bare = await startBareSmtpServer();
    let baseline: SmtpLoadResult;
    try {
      await smtpLoad(bare.port, warmDsns);
      const bareCpu = bare.cpuMs();
      baseline = await smtpLoad(bare.port, dsns);
      const bareCpuPerMessage = (bare.cpuMs() - bareCpu) / DSNS;
      figures.baselineDsnsPerSecond = baseline.perSecond;
      figures.baselineCpuMsPerDsn = bareCpuPerMessage;
      rows.push({
        measure: `baseline: bare smtp-server reading each DSN, ${CONNECTIONS} sessions × ${PER_CONNECTION} messages, pipelined`,
        value: `${fmt.int(baseline.perSecond)} DSNs/s`,
        note: `${fmt.int(DSNS)} messages; ${describe(baseline, bareCpuPerMessage)}`,
      });
    } finally {
      await bare.close();
    }

    const main = await compiledMain();
    const smtpPort = await freePort();
    const healthPort = await freePort();
    const env: Env = { ...stack.env.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', BOUNCE_DOMAIN, INBOUND_PORT: String(smtpPort), INBOUND_HEALTH_PORT: String(healthPort) };
    const inbound = startCli(['inbound'], env, { main, nodeArgs: benchNodeArgs('inbound') });
    try {
      await waitForHttp(`http://127.0.0.1:${healthPort}/health/ready`, { timeoutMs: 60_000 });
      await smtpLoad(smtpPort, warmDsns);
      const cpuBefore = processCpuMs(inbound.child.pid!);
      const result = await smtpLoad(smtpPort, dsns);
      const inboundCpu = (processCpuMs(inbound.child.pid!) - cpuBefore) / DSNS;
      const bounced = await db.email.count({ where: { status: 'bounced' } });
      figures.inboundDsnsPerSecond = result.perSecond;
      figures.inboundCpuMsPerDsn = inboundCpu;
      figures.inboundToBaseline = result.perSecond / baseline.perSecond;
      rows.push({
        measure: `easeemail inbound: DSN → report, suppression, bounced, event; the same load`,
        value: `${fmt.int(result.perSecond)} DSNs/s`,
        target: '≥ 500 DSNs/s',
        met: result.perSecond >= 500 && result.accepted === DSNS && bounced === WARM_UP + DSNS,
        note: `${fmt.ratio(result.perSecond / baseline.perSecond)} of the baseline; ${fmt.int(bounced)} emails bounced; ${describe(result, inboundCpu)}`,
      });
    } finally {
      await stopProcess(inbound, 'SIGTERM');
      if (CPU_PROF) log(`CPU profiles in ${path.resolve(CPU_PROF)}/<role>`);
    }
  } finally {
    await stack.close();
    await sink.close();
  }
  printReport({
    title: 'EaseEmail deliverability benchmark',
    context: [describeMachine(), `load average (1, 5, 15 min) at start ${loadAtStart}, at end ${loadAverage()}`, `runtime: ${await benchRuntime()}`],
    rows,
    figures,
  });
}

runBenchmark(main);
