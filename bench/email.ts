/**
 * `npm run bench:email`: the email pipeline's figures on this machine, from one run, against
 * fresh schemas, with the api and worker as separate processes (the real CLI), a local SMTP
 * server in its own process, and a keep-alive load generator in this one. Loopback only.
 *
 *   accept     POST /v1/emails, 32 connections, 20 s, api alone      ≥ 3,000 req/s, p99 ≤ 25 ms
 *   batch      POST /v1/emails/batch (100 a request), 8 connections  ≥ 15,000 emails/s
 *   delivery   5,000 emails accepted → received, vs raw nodemailer   ratio ≥ 0.6
 *   latency    accept → received at a steady 200 emails/s            p99 ≤ 100 ms
 *   memory     peak RSS of the api and worker processes              ≤ 200 MB each
 *
 * Options (env): BENCH_ACCEPT_SECONDS (20), BENCH_BATCH_SECONDS (10), BENCH_DELIVERY_EMAILS (5000),
 * BENCH_LATENCY_SECONDS (15), BENCH_SMTP_POOL_SIZE (5: the worker's and the baseline's SMTP
 * connections), BENCH_JSON=path to also write the figures as JSON. The delivery row also gives
 * the CPU that PostgreSQL and Redis spent an email (bench/lib/rss.ts storeCpuMs), which the raw
 * baseline does not pay and which shares the machine's two cores.
 */
import { closedLoop, describeStatuses, openLoop, type LoadRequest } from './lib/load';
import { runNodemailerBaseline } from './lib/nodemailer-baseline';
import { measureHttpReference } from './lib/reference';
import { describeMachine, fmt, loadAverage, printReport, runBenchmark, type ResultRow } from './lib/report';
import { processCpuMs, sampleRss, storeCpuMs } from './lib/rss';
import { sampleEmail } from './lib/sample-email';
import { startSmtpSink } from './lib/smtp-sink';
import { benchRuntime, benchRuntimeNote, benchStack, type RoleProcess } from './lib/stack';
import { summarize } from '../test/support/stats';

const seconds = (name: string, fallback: number) => Number(process.env[name] ?? fallback) * 1000;
const ACCEPT_MS = seconds('BENCH_ACCEPT_SECONDS', 20);
const BATCH_MS = seconds('BENCH_BATCH_SECONDS', 10);
const LATENCY_MS = seconds('BENCH_LATENCY_SECONDS', 15);
const DELIVERY_EMAILS = Number(process.env.BENCH_DELIVERY_EMAILS ?? 5000);
const LATENCY_RATE = 200;
// SMTP connections of the worker and of the raw nodemailer baseline alike (the app default is 5).
const SMTP_POOL_SIZE = Number(process.env.BENCH_SMTP_POOL_SIZE ?? 5);

const log = (msg: string) => console.error(`[bench:email] ${msg}`);

const email = sampleEmail;

function post(apiKey: string, path: string, body: unknown): LoadRequest {
  return { method: 'POST', path, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

async function main() {
  const loadAtStart = loadAverage();
  const runtime = await benchRuntime();
  const rows: ResultRow[] = [];
  const figures: Record<string, number> = {};
  const sink = await startSmtpSink();
  const common = { SMTP_URL: sink.url, SMTP_POOL_SIZE: String(SMTP_POOL_SIZE) };
  const roles: RoleProcess[] = [];
  const rss = sampleRss(() => roles.map((p) => p.pid), 100);

  // --- the machine right now: a bare node:http server under the same load ----------------------
  log(`reference: bare node:http server, 32 connections for 5 s, then ${LATENCY_RATE} req/s for 5 s`);
  const reference = await measureHttpReference({ connections: 32, durationMs: 5_000, body: JSON.stringify(email(0)), steadyRate: LATENCY_RATE });
  const r = summarize(reference.saturated.latenciesMs);
  figures.referencePerSecond = reference.saturated.perSecond;
  rows.push({
    measure: 'reference: bare node:http server (no app), 32 connections, 5 s',
    value: `${fmt.int(reference.saturated.perSecond)} req/s`,
    note: `p50 ${fmt.ms(r.p50)}, p99 ${fmt.ms(r.p99)}; CPU a request ${fmt.ms(reference.saturated.cpuMsPerRequest)} saturated, ${fmt.ms(reference.steady!.cpuMsPerRequest)} at ${LATENCY_RATE} req/s`,
  });

  // --- accept and batch accept: the api alone (no worker), fresh schema -------------------------
  const acceptStack = await benchStack('bench_accept', common);
  try {
    const api = await acceptStack.start('api');
    roles.push(api);
    log(`api pid ${api.pid} at ${api.url}; warming up`);
    await closedLoop({ origin: api.url, connections: 32, durationMs: 3_000, next: (i) => post(acceptStack.apiKey, '/v1/emails', email(i)) });

    log(`accept: 32 connections for ${ACCEPT_MS / 1000} s`);
    const apiCpu = processCpuMs(api.pid);
    const accept = await closedLoop({ origin: api.url, connections: 32, durationMs: ACCEPT_MS, next: (i) => post(acceptStack.apiKey, '/v1/emails', email(i)) });
    const a = summarize(accept.latenciesMs);
    figures.acceptPerSecond = accept.perSecond;
    figures.acceptP50 = a.p50;
    figures.acceptP99 = a.p99;
    const acceptCpu = (processCpuMs(api.pid) - apiCpu) / Math.max(1, accept.requests);
    rows.push({
      measure: `accept: POST /v1/emails, 32 connections, ${ACCEPT_MS / 1000} s`,
      value: `${fmt.int(accept.perSecond)} req/s`,
      target: '≥ 3,000 req/s',
      met: accept.perSecond >= 3000,
      note: `${describeStatuses(accept)}; api CPU a request ${fmt.ms(acceptCpu)}`,
    });
    rows.push({ measure: 'accept latency p50 / p99', value: `${fmt.ms(a.p50)} / ${fmt.ms(a.p99)}`, target: 'p99 ≤ 25 ms', met: a.p99 <= 25 });

    log(`batch accept: 100 emails a request, 8 connections for ${BATCH_MS / 1000} s`);
    const batchBodies = Array.from({ length: 20 }, (_, b) => JSON.stringify(Array.from({ length: 100 }, (_, i) => email(b * 100 + i))));
    const batchCpu = { api: processCpuMs(api.pid), stores: storeCpuMs(), load: process.cpuUsage() };
    const batch = await closedLoop({
      origin: api.url,
      connections: 8,
      durationMs: BATCH_MS,
      next: (i) => ({ ...post(acceptStack.apiKey, '/v1/emails/batch', []), body: batchBodies[i % batchBodies.length] }),
    });
    const b = summarize(batch.latenciesMs);
    const batchEmails = (batch.statuses[202] ?? 0) * 100;
    figures.batchEmailsPerSecond = (batchEmails / batch.durationMs) * 1000;
    // CPU an email tells more than the rate on a busy machine (the rate follows what the api gets).
    figures.batchApiCpuMsPerEmail = (processCpuMs(api.pid) - batchCpu.api) / Math.max(1, batchEmails);
    // Where the rest of the two cores went: the stores, and this process making the load.
    const batchStores = storeCpuMs();
    const loadCpu = process.cpuUsage(batchCpu.load);
    const perEmail = (ms: number) => fmt.ms(ms / Math.max(1, batchEmails));
    rows.push({
      measure: `batch accept: POST /v1/emails/batch ×100, 8 connections, ${BATCH_MS / 1000} s`,
      value: `${fmt.int(figures.batchEmailsPerSecond)} emails/s`,
      target: '≥ 15,000 emails/s',
      met: figures.batchEmailsPerSecond >= 15_000,
      note: `${fmt.int(batch.perSecond)} req/s, p99 ${fmt.ms(b.p99)}; CPU an email: api ${fmt.ms(figures.batchApiCpuMsPerEmail)}, PostgreSQL ${perEmail(batchStores.postgres - batchCpu.stores.postgres)}, Redis ${perEmail(batchStores.redis - batchCpu.stores.redis)}, load generator ${perEmail((loadCpu.user + loadCpu.system) / 1000)}; ${describeStatuses(batch)}`,
    });
  } finally {
    await acceptStack.close();
  }

  // --- delivery: raw nodemailer baseline, then the pipeline end to end -------------------------
  log(`baseline: raw nodemailer pool (${SMTP_POOL_SIZE} connections), ${DELIVERY_EMAILS} messages`);
  sink.reset();
  const baseline = await runNodemailerBaseline({ smtpUrl: sink.url, smtpTimeoutMs: 30_000, smtpPoolSize: SMTP_POOL_SIZE }, DELIVERY_EMAILS);
  figures.baselinePerSecond = baseline.perSecond;

  const deliveryStack = await benchStack('bench_delivery', common);
  try {
    const api = await deliveryStack.start('api');
    const worker = await deliveryStack.start('worker');
    roles.push(api, worker);
    log(`api pid ${api.pid}, worker pid ${worker.pid}; warming up`);
    sink.reset();
    await closedLoop({ origin: api.url, connections: 4, durationMs: 2_000, next: (i) => post(deliveryStack.apiKey, '/v1/emails', email(i)) });
    const warm = await deliveryStack.env.db.email.count();
    await sink.waitForCount(warm, 60_000);

    log(`delivery: ${DELIVERY_EMAILS} emails through /v1/emails/batch → SMTP`);
    sink.reset();
    const started = Date.now();
    const cpuAtStart = { api: processCpuMs(api.pid), worker: processCpuMs(worker.pid), stores: storeCpuMs() };
    const requests = Math.ceil(DELIVERY_EMAILS / 100);
    const batchLoad = await closedLoop({
      origin: api.url,
      connections: 4,
      durationMs: 600_000,
      next: (i) => post(deliveryStack.apiKey, '/v1/emails/batch', Array.from({ length: 100 }, (_, k) => email(i * 100 + k))),
      maxRequests: requests,
    });
    if ((batchLoad.statuses[202] ?? 0) !== requests) throw new Error(`delivery batches not all accepted: ${describeStatuses(batchLoad)}`);
    await sink.waitForCount(DELIVERY_EMAILS, 300_000);
    const deliveryMs = Date.now() - started;
    const workerCpuPerEmail = (processCpuMs(worker.pid) - cpuAtStart.worker) / DELIVERY_EMAILS;
    const apiCpuPerEmail = (processCpuMs(api.pid) - cpuAtStart.api) / DELIVERY_EMAILS;
    const stores = storeCpuMs();
    const postgresCpuPerEmail = (stores.postgres - cpuAtStart.stores.postgres) / DELIVERY_EMAILS;
    const redisCpuPerEmail = (stores.redis - cpuAtStart.stores.redis) / DELIVERY_EMAILS;
    figures.deliveryPerSecond = (DELIVERY_EMAILS / deliveryMs) * 1000;
    figures.deliveryRatio = figures.deliveryPerSecond / baseline.perSecond;
    rows.push({
      measure: `raw nodemailer pool → local smtp-server (baseline, ${SMTP_POOL_SIZE} connections)`,
      value: `${fmt.int(baseline.perSecond)} emails/s`,
      note: `${fmt.ms(baseline.cpuMs / DELIVERY_EMAILS)} CPU an email`,
    });
    rows.push({
      measure: `delivery: ${fmt.int(DELIVERY_EMAILS)} emails accept → received`,
      value: `${fmt.int(figures.deliveryPerSecond)} emails/s`,
      target: 'ratio ≥ 0.6',
      met: figures.deliveryRatio >= 0.6,
      note: `ratio ${fmt.ratio(figures.deliveryRatio)}; CPU an email: worker ${fmt.ms(workerCpuPerEmail)}, api ${fmt.ms(apiCpuPerEmail)}, PostgreSQL ${fmt.ms(postgresCpuPerEmail)}, Redis ${fmt.ms(redisCpuPerEmail)} (the baseline uses neither); ${sink.duplicates()} duplicates`,
    });

    log(`latency: ${LATENCY_RATE} emails/s for ${LATENCY_MS / 1000} s`);
    sink.reset();
    const latencyCpu = { api: processCpuMs(api.pid), worker: processCpuMs(worker.pid) };
    const sentAt = new Map<string, number>();
    const latency = await openLoop({
      origin: api.url,
      ratePerSecond: LATENCY_RATE,
      durationMs: LATENCY_MS,
      next: (i) => post(deliveryStack.apiKey, '/v1/emails', email(i)),
      onResponse: (status, body, _i, t0) => {
        if (status === 202) sentAt.set((JSON.parse(body) as { id: string }).id, performance.timeOrigin + t0);
      },
    });
    await sink.waitForCount(sentAt.size, 120_000);
    const latencyCpuPerEmail = {
      api: (processCpuMs(api.pid) - latencyCpu.api) / Math.max(1, sentAt.size),
      worker: (processCpuMs(worker.pid) - latencyCpu.worker) / Math.max(1, sentAt.size),
    };
    const e2e = [...sentAt].map(([id, t]) => (sink.received.get(id) ?? NaN) - t).filter((v) => !Number.isNaN(v));
    const l = summarize(e2e);
    const acc = summarize(latency.latenciesMs);
    figures.latencyP50 = l.p50;
    figures.latencyP99 = l.p99;
    rows.push({
      measure: `accept → received at ${LATENCY_RATE} emails/s, p50 / p99`,
      value: `${fmt.ms(l.p50)} / ${fmt.ms(l.p99)}`,
      target: 'p99 ≤ 100 ms',
      met: l.p99 <= 100,
      note: `${fmt.int(l.count)} emails; accept p99 ${fmt.ms(acc.p99)}; CPU an email: api ${fmt.ms(latencyCpuPerEmail.api)}, worker ${fmt.ms(latencyCpuPerEmail.worker)}; ${describeStatuses(latency)}`,
    });
  } finally {
    const peakApi = Math.max(...roles.filter((p) => p.role === 'api').map((p) => rss.peak(p.pid)));
    const peakWorker = Math.max(0, ...roles.filter((p) => p.role === 'worker').map((p) => rss.peak(p.pid)));
    rss.stop();
    await deliveryStack.close();
    await sink.close();
    figures.apiPeakRssBytes = peakApi;
    figures.workerPeakRssBytes = peakWorker;
    rows.push({ measure: 'peak RSS, api process', value: fmt.mb(peakApi), target: '≤ 200 MB', met: peakApi <= 200 * 1024 * 1024, note: benchRuntimeNote('api') });
    rows.push({ measure: 'peak RSS, worker process', value: fmt.mb(peakWorker), target: '≤ 200 MB', met: peakWorker > 0 && peakWorker <= 200 * 1024 * 1024, note: benchRuntimeNote('worker') });
  }

  printReport({
    title: 'Email pipeline benchmark',
    context: [
      `Machine: ${describeMachine()}; PostgreSQL and Redis on the same machine`,
      `api and worker: ${runtime}; load average (1, 5, 15 min) at start ${loadAtStart}, at end ${loadAverage()}`,
    ],
    rows,
    figures,
  });
}

runBenchmark(main);
