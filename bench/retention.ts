/**
 * `npm run bench:retention`: what the retention sweep costs the accept path on this machine, from
 * one run, against a fresh schema, with the api and worker as separate processes (the real CLI,
 * compiled), a local SMTP server taking the accepted emails, and the load generator in this
 * process. Loopback only.
 *
 * One application gets a history older than the retention period: BENCH_ATTEMPTS webhook attempts
 * (1,000,000; BENCH_ATTEMPTS_PER_DELIVERY = 4 a delivery, one delivery an event, so 250,000
 * deliveries and 250,000 events), written with INSERT … SELECT generate_series, then analysed and
 * checkpointed. The worker sweeps every BENCH_SWEEP_INTERVAL_MS (250).
 *
 * POST /v1/emails then runs at a steady BENCH_RATE (200 req/s) while the sweep is switched off and
 * on in turns of BENCH_WINDOW_SECONDS (10): off, the application keeps 3,650 days and nothing is
 * due (the same-run baseline); on, it falls back to RETENTION_DAYS (30) and the sweep deletes its
 * history. Turns rather than one baseline before: on a shared machine the load of others drifts
 * by more than the effect over the minutes the deletion takes, and alternating windows see the
 * same drift. It ends with an off window after the last row is gone.
 *
 *   without / with the sweep   accept latency p50 / p99, pooled per side     p99 with ≤ 1.2 × without
 *   deletion                   rows deleted a second while on, and the time to delete them all
 *
 * The sweep runs with the worker's RETENTION_BATCH_SIZE and RETENTION_PAUSE_MS: set them in the
 * environment to try other values (the defaults otherwise). Options (env): BENCH_ATTEMPTS,
 * BENCH_ATTEMPTS_PER_DELIVERY, BENCH_RATE, BENCH_WINDOW_SECONDS, BENCH_SWEEP_INTERVAL_MS,
 * BENCH_MAX_SECONDS (900, then it stops and says how many rows were left), BENCH_JSON=path to
 * also write the figures as JSON.
 */
import { RETENTION_DEFAULTS } from '../app/retention/defaults';
import { describeStatuses, openLoop, type LoadRequest } from './lib/load';
import { sampleEmail } from './lib/sample-email';
import { describeMachine, fmt, loadAverage, loadAverage1, printReport, runBenchmark, type ResultRow } from './lib/report';
import { processCpuMs } from './lib/rss';
import { startSmtpSink } from './lib/smtp-sink';
import { benchRuntime, benchStack, type BenchStack, type RoleProcess } from './lib/stack';
import { summarize } from '../test/support/stats';

const ATTEMPTS = Number(process.env.BENCH_ATTEMPTS ?? 1_000_000);
const PER_DELIVERY = Number(process.env.BENCH_ATTEMPTS_PER_DELIVERY ?? 4);
const EVENTS = Math.ceil(ATTEMPTS / PER_DELIVERY);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_SECONDS ?? 10) * 1000;
/** Samples sent this soon after a switch belong to neither side. */
const SETTLE_MS = 1_500;
const RATE = Number(process.env.BENCH_RATE ?? 200);
const SWEEP_INTERVAL_MS = Number(process.env.BENCH_SWEEP_INTERVAL_MS ?? 250);
const SWEEP_MAX_MS = Number(process.env.BENCH_MAX_SECONDS ?? 900) * 1000;
const BATCH = Number(process.env.RETENTION_BATCH_SIZE ?? RETENTION_DEFAULTS.batch);
const PAUSE_MS = Number(process.env.RETENTION_PAUSE_MS ?? RETENTION_DEFAULTS.pauseMs);
const TARGET_RATIO = 1.2;

const log = (msg: string) => console.error(`[bench:retention] ${msg}`);

const email = (i: number): string => JSON.stringify(sampleEmail(i));


/** The application's history, older than RETENTION_DAYS (31 to about 118 days): rows written. */
async function seed(stack: BenchStack, applicationId: string): Promise<{ events: number; deliveries: number; attempts: number }> {
  const db = stack.env.db;
  // Disabled and subscribed to the seeded type only: the emails the bench sends fan out to nothing.
  const endpoint = await db.webhookEndpoint.create({
    data: { applicationId, url: 'https://127.0.0.1/retention-bench', eventTypes: ['order.paid'], enabled: false, secretEncrypted: 'unused' },
  });
  // Oldest first, as they arrived: one event every 30 s.
  const events = await db.$executeRawUnsafe(
    `INSERT INTO "events" ("id", "applicationId", "type", "payload", "createdAt")
     SELECT gen_random_uuid(), $1::uuid, 'order.paid', jsonb_build_object('orderId', g, 'amount', 4200, 'currency', 'EUR'),
            now() - interval '31 days' - ($2::int - g) * interval '30 seconds'
     FROM generate_series(1, $2::int) g`,
    applicationId,
    EVENTS,
  );
  const deliveries = await db.$executeRawUnsafe(
    `INSERT INTO "webhook_deliveries" ("id", "applicationId", "eventId", "endpointId", "status", "attemptCount", "lastStatusCode", "createdAt", "updatedAt", "deliveredAt")
     SELECT gen_random_uuid(), e."applicationId", e."id", $2::uuid, 'delivered', $3::int, 200, e."createdAt", e."createdAt", e."createdAt"
     FROM "events" e WHERE e."applicationId" = $1::uuid AND e."type" = 'order.paid'`,
    applicationId,
    endpoint.id,
    PER_DELIVERY,
  );
  // Every attempt but the last was a 503: the history of an endpoint that came back.
  const attempts = await db.$executeRawUnsafe(
    `INSERT INTO "webhook_attempts" ("id", "deliveryId", "number", "startedAt", "durationMs", "statusCode", "responseBody")
     SELECT gen_random_uuid(), d."id", n, d."createdAt" + (n - 1) * interval '5 minutes', 120,
            CASE WHEN n = $2::int THEN 200 ELSE 503 END, CASE WHEN n = $2::int THEN '{"ok":true}' ELSE 'Service Unavailable' END
     FROM "webhook_deliveries" d CROSS JOIN generate_series(1, $2::int) n WHERE d."endpointId" = $1::uuid`,
    endpoint.id,
    PER_DELIVERY,
  );
  // What autovacuum would have done to tables this old: statistics and the visibility map.
  for (const table of ['events', 'webhook_deliveries', 'webhook_attempts']) await db.$executeRawUnsafe(`VACUUM ANALYZE "${table}"`);
  return { events, deliveries, attempts };
}

/** Rows the worker's sweep has deleted so far, from its /metrics. */
async function rowsDeleted(worker: RoleProcess): Promise<number> {
  const text = await (await fetch(`${worker.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  let sum = 0;
  for (const m of text.matchAll(/^easeemail_retention_rows_deleted_total\{[^}]*\} ([0-9.e+]+)$/gm)) sum += Number(m[1]);
  return sum;
}

/** What a window of the measurement was: the sweep deleting (on) or nothing due (off). */
interface Window {
  on: boolean;
  /** performance.now() at the switch that opened it, and at the next one. */
  from: number;
  to: number;
  latenciesMs: number[];
  apiCpuMs: number;
  requests: number;
  /** 1-minute load average when it opened. */
  load1: number;
}

function pooled(windows: Window[]) {
  const all = windows.flatMap((w) => w.latenciesMs);
  const requests = windows.reduce((n, w) => n + w.requests, 0);
  return {
    ...summarize(all),
    windowP99s: windows.map((w) => summarize(w.latenciesMs).p99),
    apiCpuMsPerRequest: windows.reduce((n, w) => n + w.apiCpuMs, 0) / Math.max(1, requests),
    load1: windows.reduce((n, w) => n + w.load1, 0) / Math.max(1, windows.length),
    seconds: windows.reduce((n, w) => n + (w.to - w.from), 0) / 1000,
  };
}

async function main() {
  const loadAtStart = loadAverage();
  const runtime = await benchRuntime();
  const rows: ResultRow[] = [];
  const figures: Record<string, number> = {};
  const sink = await startSmtpSink();
  const stack = await benchStack('bench_retention', {
    SMTP_URL: sink.url,
    SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
    RETENTION_DAYS: '30',
    RETENTION_BATCH_SIZE: String(BATCH),
    RETENTION_PAUSE_MS: String(PAUSE_MS),
  });
  // Ctrl-C still drops the schema (about 300 MB at the default size).
  const interrupted = () => void stack.close().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  let polling = false;
  let measuredLoad = '';
  try {
    const db = stack.env.db;
    const [{ applicationId }] = await db.$queryRawUnsafe<{ applicationId: string }[]>(`SELECT "applicationId"::text AS "applicationId" FROM "api_keys" LIMIT 1`);
    /** On: the application falls back to RETENTION_DAYS (30) and its seeded history is due; off: it keeps 3,650 days. */
    const sweepOn = (on: boolean) => db.application.update({ where: { id: applicationId }, data: { retentionDays: on ? null : 3650 } });
    await sweepOn(false);

    log(`seeding ${fmt.int(ATTEMPTS)} webhook attempts (${PER_DELIVERY} a delivery, ${fmt.int(EVENTS)} events) older than the retention period`);
    const seedStarted = Date.now();
    const seeded = await seed(stack, applicationId);
    const seedMs = Date.now() - seedStarted;
    const seededRows = seeded.events + seeded.deliveries + seeded.attempts;
    // The seed's dirty pages go to disk now, not during the measurement.
    await db.$executeRawUnsafe('CHECKPOINT');
    figures.seededRows = seededRows;
    figures.seedSeconds = seedMs / 1000;
    rows.push({
      measure: `seed: ${fmt.int(seeded.attempts)} webhook attempts, ${fmt.int(seeded.deliveries)} deliveries, ${fmt.int(seeded.events)} events (INSERT … SELECT generate_series, then VACUUM ANALYZE)`,
      value: `${(seedMs / 1000).toFixed(1)} s`,
      note: `${fmt.int((seededRows / seedMs) * 1000)} rows/s`,
    });

    const api = await stack.start('api');
    const worker = await stack.start('worker');
    log(`api pid ${api.pid}, worker pid ${worker.pid} (sweep every ${SWEEP_INTERVAL_MS} ms, batch ${BATCH}, pause ${PAUSE_MS} ms)`);

    // The worker's deletions, from its /metrics twice a second throughout (the same scrape cost in
    // every window).
    const timeline: { at: number; deleted: number }[] = [];
    polling = true;
    const poller = (async () => {
      while (polling) {
        const deleted = await rowsDeleted(worker).catch(() => NaN);
        if (!Number.isNaN(deleted)) timeline.push({ at: performance.now(), deleted });
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const deletedNow = () => timeline[timeline.length - 1]?.deleted ?? 0;
    const post = (i: number): LoadRequest => ({ method: 'POST', path: '/v1/emails', headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' }, body: email(i) });

    log(`warming up: ${RATE} req/s for 5 s`);
    await openLoop({ origin: api.url, ratePerSecond: RATE, durationMs: 5_000, next: (i) => post(-1 - i) });

    // One steady load throughout; the sweep is switched on and off every WINDOW_MS, so both sides
    // see the same machine (others' work on it drifts over minutes). It ends with an off window
    // after the ON window in which the last seeded row went.
    log(`measuring: ${RATE} req/s, the sweep off and on in turns of ${WINDOW_MS / 1000} s until it has deleted ${fmt.int(seededRows)} rows`);
    measuredLoad = loadAverage();
    const windows: Window[] = [];
    const samples: [sentAt: number, latencyMs: number][] = [];
    let stop = false;
    let deletedAllAt: number | undefined;
    const open = (on: boolean) => windows.push({ on, from: performance.now(), to: NaN, latenciesMs: [], apiCpuMs: processCpuMs(api.pid), requests: 0, load1: loadAverage1() });
    const close = () => {
      const w = windows[windows.length - 1];
      w.to = performance.now();
      w.apiCpuMs = processCpuMs(api.pid) - w.apiCpuMs;
    };
    const controller = (async () => {
      open(false);
      const started = performance.now();
      for (;;) {
        const on = windows[windows.length - 1].on;
        const until = performance.now() + WINDOW_MS;
        while (performance.now() < until && !(on && deletedNow() >= seededRows)) await new Promise((r) => setTimeout(r, 100));
        if (on && deletedNow() >= seededRows) deletedAllAt ??= timeline.find((p) => p.deleted >= seededRows)!.at;
        const last = !on && deletedAllAt !== undefined;
        const timedOut = performance.now() - started > SWEEP_MAX_MS;
        close();
        if (last || timedOut) break;
        await sweepOn(!on);
        open(!on);
      }
      stop = true;
    })();
    const load = await openLoop({
      origin: api.url,
      ratePerSecond: RATE,
      durationMs: SWEEP_MAX_MS + 2 * WINDOW_MS,
      until: () => stop,
      next: post,
      onResponse: (_status, _body, _i, sentAt) => void samples.push([sentAt, performance.now() - sentAt]),
    });
    await controller;
    await sweepOn(false);
    polling = false;
    await poller;
    measuredLoad += ` → ${loadAverage()}`;

    // Each sample goes to the window it was sent in, unless within SETTLE_MS of the switch (a run
    // of the sweep that had started goes on for up to its budget).
    for (const [sentAt, ms] of samples) {
      const w = windows.find((x) => sentAt >= x.from && sentAt < x.to);
      if (!w) continue;
      w.requests++;
      if (sentAt - w.from >= SETTLE_MS) w.latenciesMs.push(ms);
    }
    const off = pooled(windows.filter((w) => !w.on));
    const on = pooled(windows.filter((w) => w.on));
    const pairs = windows.flatMap((w, i) => (w.on && windows[i - 1] ? [[summarize(windows[i - 1].latenciesMs).p99, summarize(w.latenciesMs).p99]] : []));
    const worse = pairs.filter(([a, b]) => b > a).length;
    const firstDelete = timeline.find((p) => p.deleted > 0);
    const complete = deletedAllAt !== undefined;
    const deleted = complete ? seededRows : deletedNow();
    const rowsPerSecond = deleted / on.seconds;
    const wallSeconds = firstDelete && complete ? (deletedAllAt! - windows[1].from) / 1000 : NaN;

    figures.offP50 = off.p50;
    figures.offP99 = off.p99;
    figures.onP50 = on.p50;
    figures.onP99 = on.p99;
    figures.p99Ratio = on.p99 / off.p99;
    figures.rowsPerSecond = rowsPerSecond;
    figures.sweepingSeconds = on.seconds;
    figures.deleteAllWallSeconds = wallSeconds;
    figures.offLoad1 = off.load1;
    figures.onLoad1 = on.load1;

    const side = (p: ReturnType<typeof pooled>, n: number) =>
      `${fmt.int(p.count)} requests in ${n} windows, ${p.seconds.toFixed(0)} s (the first ${SETTLE_MS / 1000} s after each switch left out); windows' p99 ${fmt.ms(Math.min(...p.windowP99s))} to ${fmt.ms(Math.max(...p.windowP99s))}; api CPU a request ${fmt.ms(p.apiCpuMsPerRequest)}; 1-min load average ${p.load1.toFixed(1)} on average`;
    rows.push({
      measure: `without the sweep (nothing due): POST /v1/emails at ${RATE} req/s, p50 / p99`,
      value: `${fmt.ms(off.p50)} / ${fmt.ms(off.p99)}`,
      note: side(off, windows.filter((w) => !w.on).length),
    });
    rows.push({
      measure: `with the sweep deleting: the same load, p50 / p99`,
      value: `${fmt.ms(on.p50)} / ${fmt.ms(on.p99)}`,
      target: `p99 ≤ ${TARGET_RATIO} × without`,
      met: complete && figures.p99Ratio <= TARGET_RATIO,
      note: `p99 ratio ${fmt.ratio(figures.p99Ratio)}, p50 ratio ${fmt.ratio(on.p50 / off.p50)}; p99 above the window before in ${worse} of ${pairs.length} turns; ${side(on, pairs.length)}`,
    });
    rows.push({
      measure: `sweep: rows deleted while on (batch ${BATCH} events, pause ${PAUSE_MS} ms, sweep every ${SWEEP_INTERVAL_MS} ms)`,
      value: `${fmt.int(rowsPerSecond)} rows/s`,
      note: complete
        ? `all ${fmt.int(seededRows)} in ${on.seconds.toFixed(0)} s of sweeping (${wallSeconds.toFixed(0)} s wall clock with the off windows); statuses ${describeStatuses(load)}`
        : `**stopped after ${SWEEP_MAX_MS / 1000} s with ${fmt.int(seededRows - deleted)} rows left**`,
    });
  } finally {
    polling = false;
    process.removeListener('SIGINT', interrupted);
    await stack.close();
    await sink.close();
  }

  printReport({
    title: 'Retention sweep benchmark',
    context: [
      `Machine: ${describeMachine()}; PostgreSQL and Redis on the same machine`,
      `api and worker: ${runtime}; load average (1, 5, 15 min) at start ${loadAtStart}, during the measurement ${measuredLoad}, at end ${loadAverage()}`,
    ],
    rows,
    figures,
  });
}

runBenchmark(main);
