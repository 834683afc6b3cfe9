/**
 * `npm run bench:webhooks`: the webhook pipeline's figures on this machine, from one run, against
 * fresh schemas, with the api and the worker as separate processes (the real CLI) and an HTTP
 * receiver on loopback in this process. Loopback only (WEBHOOK_ALLOW_PRIVATE_NETWORKS=true, as
 * the receiver is local). Default settings otherwise: WEBHOOK_CONCURRENCY 50, at most 10 in
 * flight per endpoint.
 *
 *   baseline   raw BullMQ queue + worker POSTing with undici (no database), N jobs
 *   fan-out 1  N events to 1 endpoint, queued, then drained by the worker    ≥ 3,000/s, ratio ≥ 0.5
 *   fan-out 10 N/10 events to 10 endpoints, queued, then drained            ≥ 3,000/s, ratio ≥ 0.5
 *   latency    event accepted (202) → delivered, steady 200 events/s        p99 ≤ 100 ms
 *
 * Throughput is measured where the deliveries arrive: N / (last arrival − first arrival), for
 * the pipeline and the baseline alike, so process start-up is not counted.
 *
 * Options (env): BENCH_DELIVERIES (20000), BENCH_LATENCY_SECONDS (15), BENCH_JSON=path.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { startReceiver, type Receiver } from '../test/support/receiver';
import { runBullmqHttpBaseline } from './lib/bullmq-http-baseline';
import { closedLoop, describeStatuses, openLoop, type LoadRequest } from './lib/load';
import { fmt, renderTable, type ResultRow } from './lib/report';
import { processCpuMs, sampleRss, storeCpuMs } from './lib/rss';
import { benchRuntimeNote, benchStack, type BenchStack, type RoleProcess } from './lib/stack';
import { summarize } from '../test/support/stats';

const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 20_000);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_SECONDS ?? 15) * 1000;
const LATENCY_RATE = 200;
const CONCURRENCY = 50;
const THROUGHPUT_TARGET = 3_000;
const RATIO_TARGET = 0.5;

const log = (msg: string) => console.error(`[bench:webhooks] ${msg}`);

const ENV = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_CONCURRENCY: String(CONCURRENCY),
};

/** A realistic event: an order with a few fields (≈ 300 bytes as delivered). */
function payload(i: number) {
  return { orderId: `ord_${i}`, customer: { id: `cus_${i % 997}`, email: `user${i}@example.com` }, amount: 1999 + (i % 100), currency: 'EUR', items: 3, paidAt: new Date().toISOString() };
}

function post(apiKey: string, path: string, body: unknown): LoadRequest {
  return { method: 'POST', path, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** Arrival times at the receiver, per webhook-id, for rates, latencies and duplicates. */
function tally() {
  let first = 0;
  let last = 0;
  let count = 0;
  const byId = new Map<string, number>();
  const arrivals = new Map<string, number>(); // event id → arrival (latency phase)
  return {
    onRequest(headers: Record<string, string>, body: string, at: number, trackEvents: boolean) {
      count++;
      if (first === 0) first = at;
      last = at;
      const id = headers['webhook-id'] ?? '';
      byId.set(id, (byId.get(id) ?? 0) + 1);
      if (trackEvents) arrivals.set((JSON.parse(body) as { id: string }).id, at);
    },
    reset() {
      first = last = count = 0;
      byId.clear();
      arrivals.clear();
    },
    count: () => count,
    perSecond: () => (count > 1 ? ((count - 1) / (last - first)) * 1000 : NaN),
    duplicates: () => count - byId.size,
    arrivals,
  };
}

async function waitForCount(t: ReturnType<typeof tally>, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastCount = -1;
  let lastChange = Date.now();
  while (t.count() < n) {
    if (Date.now() > deadline) throw new Error(`receiver got ${t.count()} of ${n} deliveries in time`);
    if (t.count() !== lastCount) {
      lastCount = t.count();
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 30_000) throw new Error(`deliveries stalled at ${t.count()} of ${n}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Queues `deliveries` through the API with the worker stopped, then starts it and times the drain. */
async function fanOutRun(label: string, fanOut: number, rx: Receiver, t: ReturnType<typeof tally>, roles: RoleProcess[]) {
  const stack: BenchStack = await benchStack(label, ENV);
  try {
    const api = await stack.start('api');
    roles.push(api);
    for (let e = 0; e < fanOut; e++) {
      const res = await fetch(`${api.url}/v1/webhook-endpoints`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: `${rx.url}/fanout${fanOut}/e${e}`, eventTypes: ['order.paid'] }),
      });
      if (res.status !== 201) throw new Error(`creating an endpoint: ${res.status} ${await res.text()}`);
    }
    const events = Math.ceil(DELIVERIES / fanOut);
    log(`fan-out ${fanOut}: queueing ${fmt.int(events)} events (${fmt.int(events * fanOut)} deliveries) with the worker stopped`);
    const apiCpuAtStart = processCpuMs(api.pid);
    const accept = await closedLoop({ origin: api.url, connections: 16, durationMs: 600_000, maxRequests: events, next: (i) => post(stack.apiKey, '/v1/events', { type: 'order.paid', payload: payload(i) }) });
    // On a busy machine the api's CPU an event says more than the rate (which follows what it gets).
    const apiCpuMsPerEvent = (processCpuMs(api.pid) - apiCpuAtStart) / events;
    if ((accept.statuses[202] ?? 0) !== events) throw new Error(`events not all accepted: ${describeStatuses(accept)}`);
    t.reset();
    const worker = await stack.start('worker');
    roles.push(worker);
    log(`fan-out ${fanOut}: worker pid ${worker.pid} draining`);
    const cpuAtStart = processCpuMs(worker.pid);
    const storesAtStart = storeCpuMs();
    await waitForCount(t, events * fanOut, 600_000);
    const workerCpuMsPerDelivery = (processCpuMs(worker.pid) - cpuAtStart) / (events * fanOut);
    const stores = storeCpuMs();
    const postgresCpuMsPerDelivery = (stores.postgres - storesAtStart.postgres) / (events * fanOut);
    const redisCpuMsPerDelivery = (stores.redis - storesAtStart.redis) / (events * fanOut);
    await new Promise((r) => setTimeout(r, 500)); // late duplicates, if any
    return { perSecond: t.perSecond(), deliveries: events * fanOut, duplicates: t.duplicates(), publishPerSecond: accept.perSecond, apiCpuMsPerEvent, workerCpuMsPerDelivery, postgresCpuMsPerDelivery, redisCpuMsPerDelivery, stack, api, worker };
  } catch (err) {
    await stack.close();
    throw err;
  }
}

async function main() {
  const rows: ResultRow[] = [];
  const figures: Record<string, number> = {};
  const t = tally();
  let trackEvents = false;
  const rx = await startReceiver({ keep: false, answer: { status: 204 }, onRequest: (r) => t.onRequest(r.headers, r.body, r.at, trackEvents) });
  const roles: RoleProcess[] = [];
  const rss = sampleRss(() => roles.map((p) => p.pid), 100);

  try {
    // --- baseline: raw BullMQ + undici, no database --------------------------------------------
    log(`baseline: raw BullMQ worker (concurrency ${CONCURRENCY}) POSTing ${fmt.int(DELIVERIES)} jobs with undici`);
    const baselineBody = JSON.stringify({ id: '00000000-0000-4000-8000-000000000000', type: 'order.paid', timestamp: new Date().toISOString(), data: payload(0) });
    t.reset();
    const baselineStoresAtStart = storeCpuMs();
    const { workerCpuMs: baselineCpuMs } = await runBullmqHttpBaseline({
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      prefix: `bench_baseline_${randomBytes(4).toString('hex')}`,
      url: `${rx.url}/baseline`,
      count: DELIVERIES,
      concurrency: CONCURRENCY,
      body: baselineBody,
    });
    await waitForCount(t, DELIVERIES, 60_000);
    const baselineRedisCpuMs = storeCpuMs().redis - baselineStoresAtStart.redis;
    const baseline = t.perSecond();
    figures.baselinePerSecond = baseline;
    figures.baselineWorkerCpuMsPerDelivery = baselineCpuMs / DELIVERIES;
    rows.push({
      measure: `baseline: raw BullMQ + undici POST, no database (${fmt.int(DELIVERIES)} jobs, concurrency ${CONCURRENCY})`,
      value: `${fmt.int(baseline)} deliveries/s`,
      note: `worker CPU ${figures.baselineWorkerCpuMsPerDelivery.toFixed(2)} ms/delivery; Redis ${(baselineRedisCpuMs / DELIVERIES).toFixed(2)} ms a delivery, job adds included`,
    });

    // --- fan-out 1 and 10 -------------------------------------------------------------------------
    /** The table row (and figures) of a fan-out run, against the baseline. */
    const fanOutRow = (
      fanOut: number,
      r: { perSecond: number; deliveries: number; duplicates: number; publishPerSecond: number; apiCpuMsPerEvent: number; workerCpuMsPerDelivery: number; postgresCpuMsPerDelivery: number; redisCpuMsPerDelivery: number },
    ) => {
      const ratio = r.perSecond / baseline;
      figures[`fanOut${fanOut}PerSecond`] = r.perSecond;
      figures[`fanOut${fanOut}Ratio`] = ratio;
      rows.push({
        measure: `fan-out ${fanOut}: ${fmt.int(r.deliveries)} deliveries to ${fanOut} endpoint${fanOut > 1 ? 's' : ''}`,
        value: `${fmt.int(r.perSecond)} deliveries/s`,
        target: `≥ ${fmt.int(THROUGHPUT_TARGET)}/s, ratio ≥ ${RATIO_TARGET}`,
        met: r.perSecond >= THROUGHPUT_TARGET && ratio >= RATIO_TARGET,
        note: `ratio ${fmt.ratio(ratio)}; worker CPU ${r.workerCpuMsPerDelivery.toFixed(2)} ms/delivery; PostgreSQL ${r.postgresCpuMsPerDelivery.toFixed(2)} ms, Redis ${r.redisCpuMsPerDelivery.toFixed(2)} ms a delivery; ${r.duplicates} duplicates; events accepted at ${fmt.int(r.publishPerSecond)}/s (api CPU ${r.apiCpuMsPerEvent.toFixed(2)} ms an event)`,
      });
    };

    const one = await fanOutRun('bench_wh_fanout1', 1, rx, t, roles);
    fanOutRow(1, one);

    // Latency on the fan-out 1 stack, api and worker running.
    try {
      log(`latency: ${LATENCY_RATE} events/s for ${LATENCY_MS / 1000} s, fan-out 1`);
      t.reset();
      trackEvents = true;
      const acceptedAt = new Map<string, number>();
      const apiCpuAtStart = processCpuMs(one.api.pid);
      const load = await openLoop({
        origin: one.api.url,
        ratePerSecond: LATENCY_RATE,
        durationMs: LATENCY_MS,
        next: (i) => post(one.stack.apiKey, '/v1/events', { type: 'order.paid', payload: payload(i) }),
        onResponse: (status, body) => {
          if (status === 202) acceptedAt.set((JSON.parse(body) as { id: string }).id, performance.timeOrigin + performance.now());
        },
      });
      const apiCpuMsPerEvent = (processCpuMs(one.api.pid) - apiCpuAtStart) / Math.max(1, load.requests);
      await waitForCount(t, acceptedAt.size, 60_000);
      trackEvents = false;
      const e2e = summarize([...acceptedAt].map(([id, at]) => (t.arrivals.get(id) ?? NaN) - at).filter((v) => !Number.isNaN(v)));
      const acc = summarize(load.latenciesMs);
      figures.latencyP50 = e2e.p50;
      figures.latencyP99 = e2e.p99;
      rows.push({
        measure: `event accepted → delivered at ${LATENCY_RATE} events/s, p50 / p99`,
        value: `${fmt.ms(e2e.p50)} / ${fmt.ms(e2e.p99)}`,
        target: 'p99 ≤ 100 ms',
        met: e2e.p99 <= 100,
        note: `${fmt.int(e2e.count)} events, max ${fmt.ms(e2e.max)}; POST /v1/events p50 ${fmt.ms(acc.p50)} / p99 ${fmt.ms(acc.p99)}, api CPU ${apiCpuMsPerEvent.toFixed(2)} ms an event; ${describeStatuses(load)}`,
      });
    } finally {
      await one.stack.close();
    }

    const ten = await fanOutRun('bench_wh_fanout10', 10, rx, t, roles);
    await ten.stack.close();
    fanOutRow(10, ten);
  } finally {
    const peakOf = (role: 'api' | 'worker') => Math.max(0, ...roles.filter((p) => p.role === role).map((p) => rss.peak(p.pid)));
    const peakApi = peakOf('api');
    const peakWorker = peakOf('worker');
    rss.stop();
    await rx.close();
    const rssRow = (role: 'api' | 'worker', peak: number) =>
      rows.push({ measure: `peak RSS, ${role} process`, value: fmt.mb(peak), target: '≤ 200 MB', met: peak <= 200 * 1024 * 1024, note: benchRuntimeNote(role) });
    if (peakApi) rssRow('api', peakApi);
    if (peakWorker) rssRow('worker', peakWorker);
  }

  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${fmt.mb(os.totalmem())} RAM, Node ${process.version}; PostgreSQL, Redis and the receiver on the same machine; load average at the end ${load}`;
  console.log(`\nWebhook pipeline benchmark (${new Date().toISOString()})\nMachine: ${machine}\n`);
  console.log(renderTable(rows));
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({ machine, figures, rows }, null, 2));
  const missed = rows.filter((r) => r.met === false).length;
  console.log(missed ? `\n${missed} target(s) missed.` : '\nAll targets met.');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
