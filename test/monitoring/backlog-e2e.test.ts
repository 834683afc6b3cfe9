/**
 * End to end against a real Prometheus (Debian's binary on a loopback port) scraping a running
 * api and worker: a backlog is built while the worker is stopped, and through Prometheus' HTTP API
 *
 * - the exact queries the worker scales on (the prometheus-adapter rule as the adapter sends it,
 *   and the KEDA trigger's) rise with the backlog and fall once it has drained;
 * - the backlog-aging alert goes pending, then firing, then resolves;
 * - every expression of the shipped rules and dashboard evaluates without error;
 * - the measured series, fed through the HPA algorithm with the model's bounds and behaviour,
 *   scales up within one sync period of crossing the target and down after the stabilisation
 *   window (the table is printed, and shown in the README).
 *
 * Shortened thresholds exist only in this test's generated rule file: the backlog-aging alert
 * fires here after 2 s of age held for 3 s (shipped: 10 minutes for 10 minutes), built by the same
 * buildRules() as the shipped rules. Everything else (expressions, labels) is the shipped code.
 */
import { QUEUE_NAMES } from '../../app/queue';
import { startWorker, type RunningWorker } from '../../app/worker';
import { createModel, CONTRACT_QUEUES } from '../../charts/model';
import { dashboardExpressions } from '../../charts/monitoring/dashboard';
import { buildRules, ruleExpressions, ruleGroups } from '../../charts/monitoring/rules';
import { adapterExternalRules, APP_SERIES_LABEL, kedaQuery, renderAdapterQuery } from '../../charts/monitoring/scaling';
import { eventually } from '../support/eventually';
import { FAST_ENV, startStack, testLog, type Stack } from '../support/stack';
import { freePort } from '../support/processes';
import { replicaTable, simulateHpa, SYNC_PERIOD_SECONDS } from './support/hpa-simulation';
import { startPrometheus, type PrometheusServer } from './support/prometheus-server';

jest.setTimeout(300_000);

const model = createModel();
const worker = model.workloads.worker.autoscaling;
const backlog = worker.backlog!;
const NAMESPACE = 'easeemail-e2e';
const EMAILS = 1_200;
/** Of EMAILS, sent one a request (each its own job); the rest in batch requests of 100 (a batch job each, counted as 100). */
const SINGLES = 100;
const EMAIL_QUEUE = QUEUE_NAMES.email;
const BATCH_QUEUE = QUEUE_NAMES.emailBatch;
/** Test-only thresholds (see the header): the shipped ones take 20 minutes to fire. */
const testThresholds = {
  ...model.monitoring.thresholds,
  backlogAge: Object.fromEntries(CONTRACT_QUEUES.map((q) => [q, { maxSeconds: 2, forSeconds: 3 }])),
};

let s: Stack;
let prometheus: PrometheusServer;
let running: RunningWorker | undefined;
let workerPort: number;
const startedAt = Math.floor(Date.now() / 1000);

const adapterQuery = renderAdapterQuery(adapterExternalRules(backlog)[0].metricsQuery, `${APP_SERIES_LABEL}="easeemail",namespace="${NAMESPACE}"`);
const scalingQueries = { adapter: adapterQuery, keda: kedaQuery(model.name) };

async function readyJobs(which: keyof typeof scalingQueries): Promise<number | undefined> {
  const result = await prometheus.query(scalingQueries[which]);
  return result.length ? Number(result[0].value[1]) : undefined;
}

beforeAll(async () => {
  workerPort = await freePort();
  s = await startStack('monitoring-e2e', { worker: false, env: { ...FAST_ENV, WORKER_HEALTH_PORT: String(workerPort) } });
  const labels = { namespace: NAMESPACE, [APP_SERIES_LABEL]: model.name };
  prometheus = await startPrometheus({
    intervalSeconds: 1,
    rules: { groups: ruleGroups(buildRules(CONTRACT_QUEUES, testThresholds)) },
    targets: [
      { job: 'api', port: Number(new URL(s.base).port), labels: { ...labels, app_kubernetes_io_component: 'api' } },
      { job: 'worker', port: workerPort, labels: { ...labels, app_kubernetes_io_component: 'worker' } },
    ],
  });
});

afterAll(async () => {
  await running?.lifecycle.shutdown('test end');
  await prometheus?.stop();
  await s?.stop();
});

describe('backlog metrics through a real Prometheus', () => {
  let drainedAt = 0;
  const alertStates: string[] = [];

  test('the scaling queries rise with the backlog, the aging alert fires, and both fall back once the worker drains it', async () => {
    // Healthy and empty first: the queries answer 0, not "no data".
    await eventually(async () => ((await readyJobs('keda')) === 0 ? true : undefined), 'the scaling query to read 0', 60_000);
    expect(await readyJobs('adapter')).toBe(0);

    for (let i = 0; i < EMAILS - SINGLES; i += 100) {
      const batch = Array.from({ length: 100 }, (_, j) => ({ from: 'app@example.com', to: `r${i + j}@example.com`, subject: 'backlog', text: 'x' }));
      const res = await s.call('POST', '/v1/emails/batch', batch);
      expect(res.status).toBe(202);
    }
    for (let i = EMAILS - SINGLES; i < EMAILS; i++) {
      const res = await s.call('POST', '/v1/emails', { from: 'app@example.com', to: `r${i}@example.com`, subject: 'backlog', text: 'x' });
      expect(res.status).toBe(202);
    }
    const peak = await eventually(async () => {
      const v = await readyJobs('keda');
      return v === EMAILS ? v : undefined;
    }, `the KEDA query to read ${EMAILS}`, 60_000);
    expect(peak).toBe(EMAILS);
    expect(await readyJobs('adapter')).toBe(EMAILS);

    // pending, then firing, for the two email queues only
    await eventually(async () => {
      const alert = (await prometheus.alerts()).find((a) => a.labels.alertname === 'EaseEmailBacklogAging' && a.labels.queue === EMAIL_QUEUE);
      if (alert && alertStates.at(-1) !== alert.state) alertStates.push(alert.state);
      return alert?.state === 'firing' ? alert : undefined;
    }, 'EaseEmailBacklogAging to fire', 60_000);
    expect(alertStates).toEqual(['pending', 'firing']);
    const firing = await eventually(async () => {
      const queues = (await prometheus.alerts()).filter((a) => a.labels.alertname === 'EaseEmailBacklogAging' && a.state === 'firing').map((a) => a.labels.queue);
      return queues.includes(BATCH_QUEUE) ? queues : undefined;
    }, 'EaseEmailBacklogAging to fire for the batch queue', 30_000);
    expect(firing.sort()).toEqual([BATCH_QUEUE, EMAIL_QUEUE].sort());

    // Hold the backlog for three HPA sync periods (the simulation below needs them), then drain it.
    await new Promise((r) => setTimeout(r, 3 * SYNC_PERIOD_SECONDS * 1000));

    running = await startWorker(s.t.config, testLog);
    await s.smtp.waitForMessages(EMAILS, 180_000);
    await eventually(async () => ((await readyJobs('keda')) === 0 ? true : undefined), 'the KEDA query to fall back to 0', 60_000);
    expect(await readyJobs('adapter')).toBe(0);
    drainedAt = Math.ceil(Date.now() / 1000);

    // Resolved: the condition is gone (oldest age 0, read above), so the alert leaves the list.
    await eventually(async () => {
      const active = (await prometheus.alerts()).filter((a) => a.labels.alertname === 'EaseEmailBacklogAging');
      return active.length === 0 ? true : undefined;
    }, 'EaseEmailBacklogAging to resolve', 60_000);
    // The recorded series follows on its own group's next evaluation (the rule groups are evaluated
    // independently, so the alert can resolve one evaluation before this series shows the drain).
    const oldest = await eventually(async () => {
      const rows = await prometheus.query(`easeemail:queue_oldest_ready_seconds:max{queue="${EMAIL_QUEUE}"}`);
      return rows.length === 1 && Number(rows[0].value[1]) === 0 ? rows : undefined;
    }, 'the recorded oldest ready age to fall back to 0', 60_000);
    expect(oldest.map((r) => Number(r.value[1]))).toEqual([0]);
  });

  test('every expression of the shipped rules and dashboard evaluates without error', async () => {
    const expressions = [
      ...ruleExpressions(model.monitoring.rules, 'monitoring.rules'),
      ...dashboardExpressions(model.name).map((e) => ({ ...e, expr: e.expr.replace(/\$__rate_interval/g, '1m').replace(/\$namespace/g, '.*') })),
      { path: 'adapter', expr: scalingQueries.adapter },
      { path: 'keda', expr: scalingQueries.keda },
    ];
    const failures: string[] = [];
    for (const { path, expr } of expressions) {
      await prometheus.query(expr).catch((err: Error) => failures.push(`${path}: ${err.message}`));
    }
    expect(failures).toEqual([]);
    // And they see the app's series, not just parse: the recording rules hold both queues' gauges.
    const recorded = await prometheus.query('easeemail:queue_jobs:max{state="ready"}');
    expect(recorded.map((r) => r.metric.queue).sort()).toEqual([...CONTRACT_QUEUES].sort());
    const processes = await prometheus.query('max by (role) (nodejs_eventloop_lag_p99_seconds)');
    expect(processes.map((r) => r.metric.role).sort()).toEqual(['api', 'worker']);
  });

  test('the HPA, fed the measured series, scales up within one sync period of crossing the target and down after the stabilisation window', async () => {
    expect(drainedAt).toBeGreaterThan(0);
    const [series] = await prometheus.queryRange(scalingQueries.keda, startedAt, drainedAt, 1);
    const points = series.values.map(([t, v]): [number, number] => [t - startedAt, Number(v)]);
    const end = points.at(-1)![0];
    const window = worker.behavior.scaleDown.stabilizationWindowSeconds;
    const steps = simulateHpa(points, { minReplicas: worker.minReplicas, maxReplicas: worker.maxReplicas, target: backlog.readyJobsPerReplica, behavior: worker.behavior }, worker.minReplicas, end + window + 4 * SYNC_PERIOD_SECONDS);
    console.log(`Worker replicas the generated HPA would choose (measured ready items, target ${backlog.readyJobsPerReplica}/replica, sync every ${SYNC_PERIOD_SECONDS} s; after ${end} s the last value holds):\n${replicaTable(steps)}`);

    // Crossing: the first sample at which the usage ratio leaves the tolerance upwards.
    const threshold = backlog.readyJobsPerReplica * worker.minReplicas * 1.1;
    const crossedAt = points.find(([, v]) => v > threshold)![0];
    const firstUp = steps.find((st) => st.replicas > worker.minReplicas)!;
    expect(firstUp.t - crossedAt).toBeGreaterThanOrEqual(0);
    expect(firstUp.t - crossedAt).toBeLessThanOrEqual(SYNC_PERIOD_SECONDS);
    const peakReplicas = Math.max(...steps.map((st) => st.replicas));
    expect(peakReplicas).toBeGreaterThan(worker.minReplicas);

    // Down: only once the stabilisation window holds no recommendation as high as the replicas
    // then running (the last such sync is at most the last one under the backlog), then to the minimum.
    const downIndex = steps.findIndex((st, i) => i > 0 && st.replicas < steps[i - 1].replicas);
    expect(downIndex).toBeGreaterThan(0);
    const before = steps[downIndex - 1].replicas;
    const lastHigh = steps.slice(0, downIndex).filter((st) => st.raw >= before).at(-1)!;
    expect(lastHigh.t).toBeLessThanOrEqual(end);
    expect(steps[downIndex].t - lastHigh.t).toBeGreaterThanOrEqual(window);
    expect(steps[downIndex].t - lastHigh.t).toBeLessThan(window + SYNC_PERIOD_SECONDS);
    expect(steps.at(-1)!.replicas).toBe(worker.minReplicas);
  });
});
