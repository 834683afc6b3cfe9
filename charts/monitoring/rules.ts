/**
 * Recording rules and alerts, as data in the deployment model (`monitoring.rules`), and their two
 * renderings: a PrometheusRule spec (operator) and a plain Prometheus rule file (compose, and
 * Prometheus without the operator). Thresholds come from `monitoring.thresholds`.
 *
 * Queue-level gauges are reported by every api and worker replica; each rule reads them through
 * `max by (namespace, queue)` (the recording rules below), so replicas never multiply them.
 */
import { QUEUE_JOBS_METRIC, QUEUE_OLDEST_READY_METRIC, QUEUE_READY_ITEMS_METRIC } from '../../app/queue/metrics';

export type Severity = 'critical' | 'warning' | 'info';

export interface RecordingRuleSpec {
  readonly record: string;
  readonly expr: string;
}

export interface AlertRuleSpec {
  readonly alert: string;
  readonly expr: string;
  /** How long the condition must hold before the alert fires (0: at once). */
  readonly forSeconds: number;
  readonly severity: Severity;
  /** Extra labels that tell several rules of one alert apart (e.g. `queue`). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly summary: string;
  readonly description: string;
}

export interface BacklogAgeThreshold {
  /** The oldest ready job older than this ... */
  readonly maxSeconds: number;
  /** ... for this long fires EaseEmailBacklogAging. */
  readonly forSeconds: number;
}

export interface MonitoringThresholds {
  /** Per BullMQ queue name (the queue contract's queues). */
  readonly backlogAge: Readonly<Record<string, BacklogAgeThreshold>>;
  /** Share of delivery attempts that did not succeed (SMTP retry or failure; webhook retry or failure). */
  readonly deliveryFailureRatio: { readonly max: number; readonly forSeconds: number };
  /** Share of api answers that are 5xx. */
  readonly apiErrorRatio: { readonly max: number; readonly forSeconds: number };
  /** No worker metrics at all, or every worker unready, for this long. */
  readonly workerDownForSeconds: number;
  /** Every process of a role failing its PostgreSQL or Redis readiness check for this long. */
  readonly dependencyUnreadyForSeconds: number;
  /** Failed jobs grew by at least `minIncrease` within `windowSeconds`, for `forSeconds`. */
  readonly failedJobsGrowth: { readonly minIncrease: number; readonly windowSeconds: number; readonly forSeconds: number };
}

export interface RulesSpec {
  readonly recording: readonly RecordingRuleSpec[];
  readonly alerts: readonly AlertRuleSpec[];
}

/** Names of the recording rules, for the queries that build on them. */
export const RECORDED = {
  queueJobs: 'easeemail:queue_jobs:max',
  oldestReady: 'easeemail:queue_oldest_ready_seconds:max',
  readyJobs: 'easeemail:ready_jobs:sum',
  emailDeliveries: 'easeemail:email_deliveries:rate5m',
  webhookDeliveries: 'easeemail:webhook_deliveries:rate5m',
  apiRequests: 'easeemail:api_requests:rate5m',
} as const;

const duration = (seconds: number) => (seconds % 3600 === 0 ? `${seconds / 3600}h` : seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`);
const percent = (ratio: number) => `${Math.round(ratio * 1000) / 10} %`;

/** The rules EaseEmail ships, for the queues of the queue contract. */
export function buildRules(queues: readonly string[], t: MonitoringThresholds): RulesSpec {
  const recording: RecordingRuleSpec[] = [
    { record: RECORDED.queueJobs, expr: `max by (namespace, queue, state) (${QUEUE_JOBS_METRIC})` },
    { record: RECORDED.oldestReady, expr: `max by (namespace, queue) (${QUEUE_OLDEST_READY_METRIC})` },
    { record: RECORDED.readyJobs, expr: `sum by (namespace) (max by (namespace, queue) (${QUEUE_READY_ITEMS_METRIC}))` },
    { record: RECORDED.emailDeliveries, expr: 'sum by (namespace, outcome) (rate(easeemail_email_deliveries_total[5m]))' },
    { record: RECORDED.webhookDeliveries, expr: 'sum by (namespace, outcome) (rate(easeemail_webhook_deliveries_total[5m]))' },
    { record: RECORDED.apiRequests, expr: 'sum by (namespace, status) (rate(easeemail_http_request_duration_seconds_count{role="api"}[5m]))' },
  ];
  const failureRatioAlert = (channel: string, what: string, failed: string, all: string): AlertRuleSpec => ({
    alert: 'EaseEmailDeliveryFailureRatioHigh',
    expr: `sum by (namespace) (${failed}) / sum by (namespace) (${all}) > ${t.deliveryFailureRatio.max}`,
    forSeconds: t.deliveryFailureRatio.forSeconds,
    severity: 'warning',
    labels: { channel },
    summary: `More than ${percent(t.deliveryFailureRatio.max)} of ${what} attempts fail`,
    description: `Over the last 5 minutes {{ $value | humanizePercentage }} of ${what} delivery attempts were retried or failed.`,
  });
  const alerts: AlertRuleSpec[] = [
    ...queues.map((queue): AlertRuleSpec => {
      const a = t.backlogAge[queue];
      return {
        alert: 'EaseEmailBacklogAging',
        expr: `${RECORDED.oldestReady}{queue="${queue}"} > ${a.maxSeconds}`,
        forSeconds: a.forSeconds,
        severity: 'warning',
        labels: { queue },
        summary: `Jobs in ${queue} wait longer than ${duration(a.maxSeconds)} to run`,
        description: `The oldest ready job in ${queue} has waited {{ $value | humanizeDuration }} (threshold ${duration(a.maxSeconds)}, for ${duration(a.forSeconds)}). Workers are too few, stuck on a slow peer, or not running.`,
      };
    }),
    failureRatioAlert('email', 'SMTP', `${RECORDED.emailDeliveries}{outcome!="sent"}`, RECORDED.emailDeliveries),
    // endpoint_disabled is a delivery that was not attempted: neither a failure nor a success.
    failureRatioAlert('webhook', 'webhook', `${RECORDED.webhookDeliveries}{outcome=~"retry_scheduled|failed"}`, `${RECORDED.webhookDeliveries}{outcome=~"delivered|retry_scheduled|failed"}`),
    {
      alert: 'EaseEmailWebhookEndpointDisabled',
      expr: 'max by (namespace) (easeemail_webhook_endpoints_disabled{by="automatic"}) > 0',
      forSeconds: 0,
      severity: 'info',
      summary: 'Webhook endpoints were disabled automatically',
      description: '{{ $value }} webhook endpoints are disabled after a 410 Gone or 5 days of failures; their subscribers receive no events until re-enabled.',
    },
    {
      alert: 'EaseEmailWorkerMetricsAbsent',
      expr: 'absent(easeemail_ready{role="worker"})',
      forSeconds: t.workerDownForSeconds,
      severity: 'critical',
      summary: 'No worker is running or being scraped',
      description: `Prometheus has had no metrics from any worker for ${duration(t.workerDownForSeconds)}: nothing delivers emails or webhooks, and the backlog autoscaler has no worker to scale.`,
    },
    {
      alert: 'EaseEmailNoReadyWorker',
      expr: 'max by (namespace) (easeemail_ready{role="worker"}) == 0',
      forSeconds: t.workerDownForSeconds,
      severity: 'critical',
      summary: 'Every worker is unready',
      description: `No worker has passed its readiness check for ${duration(t.workerDownForSeconds)}; see EaseEmailDependencyUnready for which dependency.`,
    },
    {
      alert: 'EaseEmailDependencyUnready',
      expr: 'max by (namespace, role, dependency) (easeemail_dependency_ready) == 0',
      forSeconds: t.dependencyUnreadyForSeconds,
      severity: 'critical',
      summary: 'Every {{ $labels.role }} process fails its {{ $labels.dependency }} readiness check',
      description: `No {{ $labels.role }} process has reached {{ $labels.dependency }} within the readiness timeout for ${duration(t.dependencyUnreadyForSeconds)}.`,
    },
    {
      alert: 'EaseEmailApiErrorRatioHigh',
      expr: `sum by (namespace) (${RECORDED.apiRequests}{status=~"5.."}) / sum by (namespace) (${RECORDED.apiRequests}) > ${t.apiErrorRatio.max}`,
      forSeconds: t.apiErrorRatio.forSeconds,
      severity: 'critical',
      summary: `More than ${percent(t.apiErrorRatio.max)} of api answers are 5xx`,
      description: 'Over the last 5 minutes {{ $value | humanizePercentage }} of api requests ended in a 5xx.',
    },
    {
      alert: 'EaseEmailFailedJobsGrowing',
      expr: `delta(${RECORDED.queueJobs}{state="failed"}[${duration(t.failedJobsGrowth.windowSeconds)}]) >= ${t.failedJobsGrowth.minIncrease}`,
      forSeconds: t.failedJobsGrowth.forSeconds,
      severity: 'warning',
      summary: 'Failed jobs pile up in {{ $labels.queue }}',
      description: `{{ $value }} more jobs failed for good in {{ $labels.queue }} within ${duration(t.failedJobsGrowth.windowSeconds)}.`,
    },
  ];
  return { recording, alerts };
}

/** Every alert name, once. */
export function alertNames(rules: RulesSpec): string[] {
  return [...new Set(rules.alerts.map((a) => a.alert))];
}

/** The `runbook` annotation: the README section of the alert. */
export function runbookAnchor(alert: string): string {
  return `README.md#${alert.toLowerCase()}`;
}

/** Rule groups as Prometheus reads them (rule file) and the operator embeds them (PrometheusRule). */
export function ruleGroups(rules: RulesSpec, opts: { forOverrideSeconds?: number } = {}) {
  return [
    { name: 'easeemail.recording', rules: rules.recording.map((r) => ({ record: r.record, expr: r.expr })) },
    {
      name: 'easeemail.alerts',
      rules: rules.alerts.map((a) => ({
        alert: a.alert,
        expr: a.expr,
        ...((opts.forOverrideSeconds ?? a.forSeconds) > 0 ? { for: duration(opts.forOverrideSeconds ?? a.forSeconds) } : {}),
        labels: { severity: a.severity, ...a.labels },
        annotations: { summary: a.summary, description: a.description, runbook: runbookAnchor(a.alert) },
      })),
    },
  ];
}

/** Every expression of the rules, with where it sits (for validation and the end-to-end test). */
export function ruleExpressions(rules: RulesSpec, path: string): { path: string; expr: string }[] {
  return [
    ...rules.recording.map((r, i) => ({ path: `${path}.recording[${i}].expr`, expr: r.expr })),
    ...rules.alerts.map((a, i) => ({ path: `${path}.alerts[${i}].expr`, expr: a.expr })),
  ];
}

/** Names the rules define themselves (recording rules), which expressions may use besides the app's metrics. */
export function recordedNames(rules: RulesSpec): Set<string> {
  return new Set(rules.recording.map((r) => r.record));
}

/** The monitoring part of the deployment model. */
export interface MonitoringSpec {
  /** How often Prometheus scrapes the api and the workers (monitors, compose). */
  readonly scrapeIntervalSeconds: number;
  /** Namespace Prometheus runs in: the metrics ports admit scrapes from there (NetworkPolicy). */
  readonly prometheusNamespace: string;
  /** Labels on the PodMonitors and the PrometheusRule, for the operator's selectors. */
  readonly monitorLabels: Readonly<Record<string, string>>;
  /** The compose `monitoring` profile's Prometheus. */
  readonly compose: {
    readonly image: string;
    readonly uiPort: { readonly port: string; readonly hostPortVariable: string; readonly defaultHostPort: number };
    readonly memoryLimitMiB: number;
  };
  readonly thresholds: MonitoringThresholds;
  /** Built from `thresholds` by `buildRules`; data, so validation can check every expression. */
  readonly rules: RulesSpec;
}
