/**
 * The shipped rules, checked and unit-tested by Prometheus' own `promtool`: `check rules` on the
 * generated rule file, and `test rules` with, for every alert, a series that must fire it (with
 * exactly the expected labels) and a healthy series that must leave it silent.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createModel } from '../../charts/model';
import { alertNames, ruleGroups } from '../../charts/monitoring/rules';
import { promtool } from './support/prometheus';

const monitoring = createModel().monitoring;
const NS = 'namespace="easeemail"';

interface AlertCase {
  alert: string;
  /** What the case shows. */
  name: string;
  interval?: string;
  series: { series: string; values: string }[];
  evalTime: string;
  /**
   * Labels of each firing alert (severity included) and `$value` as the annotations render it
   * (humanized where the template says so); empty: silent.
   */
  firing: ({ $value: string } & Record<string, string>)[];
}

/** Two replicas reporting the same queue gauge: the rules must not double it. */
const twoReplicas = (metric: string, labels: string, values: string) => [
  { series: `${metric}{${NS},${labels},role="api",instance="api-1"}`, values },
  { series: `${metric}{${NS},${labels},role="worker",instance="worker-1"}`, values },
];

const CASES: AlertCase[] = [
  {
    alert: 'EaseEmailBacklogAging',
    name: 'the oldest email has waited more than 10 minutes for more than 10 minutes',
    // +60 s per minute: over 600 s from minute 11, firing from minute 21; flat from minute 20, so
    // the value is the same whether the alert reads this or the previous recording-rule sample.
    series: [...twoReplicas('easeemail_queue_oldest_ready_seconds', 'queue="email-delivery"', '0+60x20 1200x20'), ...twoReplicas('easeemail_queue_oldest_ready_seconds', 'queue="webhook-delivery"', '1x40')],
    evalTime: '25m',
    firing: [{ namespace: 'easeemail', queue: 'email-delivery', severity: 'warning', $value: '20m 0s' }],
  },
  {
    alert: 'EaseEmailBacklogAging',
    name: 'still pending before the for: duration has passed',
    series: twoReplicas('easeemail_queue_oldest_ready_seconds', 'queue="email-delivery"', '0+60x40'),
    evalTime: '15m',
    firing: [],
  },
  {
    alert: 'EaseEmailBacklogAging',
    name: 'healthy: jobs run within seconds',
    series: [...twoReplicas('easeemail_queue_oldest_ready_seconds', 'queue="email-delivery"', '2x60'), ...twoReplicas('easeemail_queue_oldest_ready_seconds', 'queue="webhook-delivery"', '0x60')],
    evalTime: '50m',
    firing: [],
  },
  {
    alert: 'EaseEmailDeliveryFailureRatioHigh',
    name: 'half the SMTP attempts are retried',
    series: [
      { series: `easeemail_email_deliveries_total{${NS},outcome="sent",role="worker",instance="w1"}`, values: '0+60x40' },
      { series: `easeemail_email_deliveries_total{${NS},outcome="retry",role="worker",instance="w1"}`, values: '0+60x40' },
    ],
    evalTime: '30m',
    firing: [{ namespace: 'easeemail', channel: 'email', severity: 'warning', $value: '50%' }],
  },
  {
    alert: 'EaseEmailDeliveryFailureRatioHigh',
    name: 'a third of the webhook attempts fail',
    series: [
      { series: `easeemail_webhook_deliveries_total{${NS},outcome="delivered",endpoint="e1",role="worker",instance="w1"}`, values: '0+120x40' },
      { series: `easeemail_webhook_deliveries_total{${NS},outcome="failed",endpoint="e2",role="worker",instance="w1"}`, values: '0+60x40' },
    ],
    evalTime: '30m',
    firing: [{ namespace: 'easeemail', channel: 'webhook', severity: 'warning', $value: '33.33%' }],
  },
  {
    alert: 'EaseEmailDeliveryFailureRatioHigh',
    name: 'healthy: 2 % of attempts retried, and disabled-endpoint skips are not attempts',
    series: [
      { series: `easeemail_email_deliveries_total{${NS},outcome="sent",role="worker",instance="w1"}`, values: '0+98x40' },
      { series: `easeemail_email_deliveries_total{${NS},outcome="retry",role="worker",instance="w1"}`, values: '0+2x40' },
      { series: `easeemail_webhook_deliveries_total{${NS},outcome="delivered",endpoint="e1",role="worker",instance="w1"}`, values: '0+100x40' },
      { series: `easeemail_webhook_deliveries_total{${NS},outcome="endpoint_disabled",endpoint="e2",role="worker",instance="w1"}`, values: '0+100x40' },
    ],
    evalTime: '30m',
    firing: [],
  },
  {
    alert: 'EaseEmailWebhookEndpointDisabled',
    name: 'an endpoint was disabled automatically (reported by two workers)',
    series: [
      { series: `easeemail_webhook_endpoints_disabled{${NS},by="automatic",role="worker",instance="w1"}`, values: '0 0 1 1 1' },
      { series: `easeemail_webhook_endpoints_disabled{${NS},by="automatic",role="worker",instance="w2"}`, values: '0 0 1 1 1' },
    ],
    evalTime: '3m',
    firing: [{ namespace: 'easeemail', severity: 'info', $value: '1' }],
  },
  {
    alert: 'EaseEmailWebhookEndpointDisabled',
    name: 'healthy: only endpoints disabled by hand',
    series: [
      { series: `easeemail_webhook_endpoints_disabled{${NS},by="automatic",role="worker",instance="w1"}`, values: '0x5' },
      { series: `easeemail_webhook_endpoints_disabled{${NS},by="manual",role="worker",instance="w1"}`, values: '3x5' },
    ],
    evalTime: '4m',
    firing: [],
  },
  {
    alert: 'EaseEmailWorkerMetricsAbsent',
    name: 'only the api reports for 10 minutes',
    series: [{ series: `easeemail_ready{${NS},role="api",instance="api-1"}`, values: '1x10' }],
    evalTime: '10m',
    firing: [{ role: 'worker', severity: 'critical', $value: '1' }],
  },
  {
    alert: 'EaseEmailWorkerMetricsAbsent',
    name: 'healthy: a worker reports',
    series: [{ series: `easeemail_ready{${NS},role="worker",instance="w1"}`, values: '1x10' }],
    evalTime: '10m',
    firing: [],
  },
  {
    alert: 'EaseEmailNoReadyWorker',
    name: 'both workers unready',
    series: [
      { series: `easeemail_ready{${NS},role="worker",instance="w1"}`, values: '0x10' },
      { series: `easeemail_ready{${NS},role="worker",instance="w2"}`, values: '0x10' },
    ],
    evalTime: '10m',
    firing: [{ namespace: 'easeemail', severity: 'critical', $value: '0' }],
  },
  {
    alert: 'EaseEmailNoReadyWorker',
    name: 'healthy: one of two workers ready',
    series: [
      { series: `easeemail_ready{${NS},role="worker",instance="w1"}`, values: '0x10' },
      { series: `easeemail_ready{${NS},role="worker",instance="w2"}`, values: '1x10' },
    ],
    evalTime: '10m',
    firing: [],
  },
  {
    alert: 'EaseEmailDependencyUnready',
    name: 'no worker reaches Redis',
    series: [
      { series: `easeemail_dependency_ready{${NS},dependency="redis",role="worker",instance="w1"}`, values: '0x10' },
      { series: `easeemail_dependency_ready{${NS},dependency="redis",role="worker",instance="w2"}`, values: '0x10' },
      { series: `easeemail_dependency_ready{${NS},dependency="postgres",role="worker",instance="w1"}`, values: '1x10' },
      { series: `easeemail_dependency_ready{${NS},dependency="redis",role="api",instance="a1"}`, values: '1x10' },
    ],
    evalTime: '5m',
    firing: [{ namespace: 'easeemail', role: 'worker', dependency: 'redis', severity: 'critical', $value: '0' }],
  },
  {
    alert: 'EaseEmailDependencyUnready',
    name: 'healthy: one worker cannot reach PostgreSQL, the other can',
    series: [
      { series: `easeemail_dependency_ready{${NS},dependency="postgres",role="worker",instance="w1"}`, values: '0x10' },
      { series: `easeemail_dependency_ready{${NS},dependency="postgres",role="worker",instance="w2"}`, values: '1x10' },
    ],
    evalTime: '5m',
    firing: [],
  },
  {
    alert: 'EaseEmailApiErrorRatioHigh',
    name: 'one answer in ten is a 500',
    series: [
      { series: `easeemail_http_request_duration_seconds_count{${NS},role="api",method="POST",route="/v1/emails",status="202",instance="a1"}`, values: '0+90x30' },
      { series: `easeemail_http_request_duration_seconds_count{${NS},role="api",method="POST",route="/v1/emails",status="500",instance="a1"}`, values: '0+10x30' },
    ],
    evalTime: '20m',
    firing: [{ namespace: 'easeemail', severity: 'critical', $value: '10%' }],
  },
  {
    alert: 'EaseEmailApiErrorRatioHigh',
    name: 'healthy: client errors are not our errors',
    series: [
      { series: `easeemail_http_request_duration_seconds_count{${NS},role="api",method="POST",route="/v1/emails",status="202",instance="a1"}`, values: '0+50x30' },
      { series: `easeemail_http_request_duration_seconds_count{${NS},role="api",method="POST",route="/v1/emails",status="422",instance="a1"}`, values: '0+50x30' },
      { series: `easeemail_http_request_duration_seconds_count{${NS},role="worker",method="GET",route="/metrics",status="500",instance="w1"}`, values: '0+50x30' },
    ],
    evalTime: '20m',
    firing: [],
  },
  {
    alert: 'EaseEmailFailedJobsGrowing',
    name: 'a failed email job a minute',
    series: twoReplicas('easeemail_queue_jobs', 'queue="email-delivery",state="failed"', '0+1x120'),
    evalTime: '90m',
    firing: [{ namespace: 'easeemail', queue: 'email-delivery', state: 'failed', severity: 'warning', $value: '60' }],
  },
  {
    alert: 'EaseEmailFailedJobsGrowing',
    name: 'healthy: failed jobs stay where they are (and ready jobs growing is not failure)',
    series: [
      ...twoReplicas('easeemail_queue_jobs', 'queue="email-delivery",state="failed"', '40x120'),
      ...twoReplicas('easeemail_queue_jobs', 'queue="email-delivery",state="ready"', '0+5x120'),
    ],
    evalTime: '90m',
    firing: [],
  },
];

/** The rule's annotations with Go templates filled in the way Prometheus does for these few forms. */
function expectedAnnotations(alert: string, labels: Record<string, string>, value: string): Record<string, string> {
  const rule = monitoring.rules.alerts.find((a) => a.alert === alert && Object.entries(a.labels ?? {}).every(([k, v]) => labels[k] === v));
  if (!rule) throw new Error(`no rule ${alert} for ${JSON.stringify(labels)}`);
  const fill = (text: string) =>
    text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? '').replace(/\{\{ \$value( \| humanize\w+)? \}\}/g, value);
  return { summary: fill(rule.summary), description: fill(rule.description), runbook: `README.md#${alert.toLowerCase()}` };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'easeemail-rules-'));
  writeFileSync(join(dir, 'rules.yml'), stringify({ groups: ruleGroups(monitoring.rules) }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('promtool check rules accepts the rule file', () => {
  const r = promtool(['check', 'rules', join(dir, 'rules.yml')]);
  expect(r.output).toContain(`SUCCESS: ${monitoring.rules.recording.length + monitoring.rules.alerts.length} rules found`);
  expect(r.code).toBe(0);
});

test('promtool check config accepts the compose profile\'s Prometheus configuration (rule file path mapped as compose mounts it)', () => {
  const config = readFileSync(join(__dirname, '..', '..', 'compose', 'prometheus.yaml'), 'utf8');
  expect(config).toContain('/etc/prometheus/rules/easeemail.rules.yaml');
  writeFileSync(join(dir, 'prometheus.yml'), config.replace('/etc/prometheus/rules/easeemail.rules.yaml', join(dir, 'rules.yml')));
  const r = promtool(['check', 'config', join(dir, 'prometheus.yml')]);
  expect(r.output).toContain('SUCCESS');
  expect(r.code).toBe(0);
});

test('every alert has a case that fires it and a healthy case that does not', () => {
  for (const alert of alertNames(monitoring.rules)) {
    const cases = CASES.filter((c) => c.alert === alert);
    expect({ alert, fires: cases.some((c) => c.firing.length > 0), silent: cases.some((c) => c.firing.length === 0) }).toEqual({ alert, fires: true, silent: true });
  }
});

test.each(CASES.map((c) => [c.alert, c.name, c] as const))('promtool: %s: %s', (_alert, _name, c) => {
  const file = join(dir, `case-${CASES.indexOf(c)}.yml`);
  writeFileSync(
    file,
    stringify({
      rule_files: ['rules.yml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: c.interval ?? '1m',
          input_series: c.series,
          alert_rule_test: [
            {
              eval_time: c.evalTime,
              alertname: c.alert,
              exp_alerts: c.firing.map(({ $value, ...labels }) => ({ exp_labels: labels, exp_annotations: expectedAnnotations(c.alert, labels, $value) })),
            },
          ],
        },
      ],
    }),
  );
  const r = promtool(['test', 'rules', file]);
  expect(r.output).toContain('SUCCESS');
  expect(r.code).toBe(0);
});

test('a wrong expectation fails (the harness can fail)', () => {
  const c = CASES[0];
  const file = join(dir, 'wrong.yml');
  const parsed = { rule_files: ['rules.yml'], evaluation_interval: '1m', tests: [{ interval: '1m', input_series: c.series, alert_rule_test: [{ eval_time: c.evalTime, alertname: c.alert, exp_alerts: [] }] }] };
  writeFileSync(file, stringify(parsed));
  const r = promtool(['test', 'rules', file]);
  expect(r.output).toContain('FAILED');
  expect(r.code).not.toBe(0);
});
