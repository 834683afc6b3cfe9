/**
 * Invariants of the monitoring and scaling parts of the model, in the style of
 * charts/model/validate.ts: every problem, each naming its field.
 */
import type { DeploymentModel } from '../model/types';
import { appMetricNames } from './app-metrics';
import { dashboardExpressions } from './dashboard';
import { metricNamesIn } from './promql';
import { recordedNames, ruleExpressions, type Severity } from './rules';
import { adapterExternalRules, kedaQuery, type BacklogScalingSpec, type ScalingBehaviorSpec } from './scaling';

const SEVERITIES: readonly Severity[] = ['critical', 'warning', 'info'];
const isPositiveInt = (n: number) => Number.isInteger(n) && n > 0;
const isNonNegativeInt = (n: number) => Number.isInteger(n) && n >= 0;

/** autoscaling/v2 limits: windows up to an hour, policy periods up to 30 minutes. */
export function checkBehavior(b: ScalingBehaviorSpec, path: string): string[] {
  const problems: string[] = [];
  for (const direction of ['scaleUp', 'scaleDown'] as const) {
    const r = b[direction];
    const at = `${path}.${direction}`;
    if (!(isNonNegativeInt(r.stabilizationWindowSeconds) && r.stabilizationWindowSeconds <= 3600)) {
      problems.push(`${at}.stabilizationWindowSeconds (${r.stabilizationWindowSeconds}) must be an integer in 0..3600`);
    }
    if (r.policies.length === 0) problems.push(`${at}.policies must not be empty`);
    r.policies.forEach((p, i) => {
      if (!isPositiveInt(p.value)) problems.push(`${at}.policies[${i}].value (${p.value}) must be a positive integer`);
      if (!(isPositiveInt(p.periodSeconds) && p.periodSeconds <= 1800)) problems.push(`${at}.policies[${i}].periodSeconds (${p.periodSeconds}) must be an integer in 1..1800`);
    });
  }
  return problems;
}

export function checkBacklogScaling(b: BacklogScalingSpec, path: string): string[] {
  const problems: string[] = [];
  if (!(Number.isFinite(b.readyJobsPerReplica) && b.readyJobsPerReplica > 0)) {
    problems.push(`${path}.readyJobsPerReplica (${b.readyJobsPerReplica}) must be a positive number: it is the ready items (emails, deliveries) each worker replica is meant to carry`);
  }
  if (!['external-metric', 'keda'].includes(b.scaler)) problems.push(`${path}.scaler ("${b.scaler}") must be "external-metric" or "keda"`);
  if (!/^[a-z_][a-z0-9_]*$/.test(b.externalMetricName)) problems.push(`${path}.externalMetricName ("${b.externalMetricName}") must be a metric name ([a-z_][a-z0-9_]*)`);
  if (!/^https?:\/\/[^\s/]+/.test(b.prometheusUrl)) problems.push(`${path}.prometheusUrl ("${b.prometheusUrl}") must be an http(s) URL`);
  return problems;
}

/** Every expression the model ships (rules, dashboard, scaling queries), with its field. */
export function shippedExpressions(model: DeploymentModel): { path: string; expr: string }[] {
  const backlog = model.workloads.worker.autoscaling.backlog;
  return [
    ...ruleExpressions(model.monitoring.rules, 'monitoring.rules'),
    ...dashboardExpressions(model.name),
    ...(backlog
      ? [
          { path: 'workloads.worker.autoscaling.backlog (prometheus-adapter metricsQuery)', expr: adapterExternalRules(backlog)[0].metricsQuery.replace(/<<\.\w+>>/g, '') },
          { path: 'workloads.worker.autoscaling.backlog (KEDA query)', expr: kedaQuery(model.name) },
        ]
      : []),
  ];
}

export function checkMonitoring(model: DeploymentModel, queues: readonly string[]): string[] {
  const problems: string[] = [];
  const m = model.monitoring;
  if (!isPositiveInt(m.scrapeIntervalSeconds)) problems.push(`monitoring.scrapeIntervalSeconds (${m.scrapeIntervalSeconds}) must be a positive integer`);
  for (const queue of queues) {
    const t = m.thresholds.backlogAge[queue];
    if (!t) problems.push(`monitoring.thresholds.backlogAge["${queue}"] is missing (every queue of the contract needs a backlog-age alert)`);
    else if (!isPositiveInt(t.maxSeconds) || !isNonNegativeInt(t.forSeconds)) problems.push(`monitoring.thresholds.backlogAge["${queue}"] needs a positive maxSeconds and a non-negative forSeconds`);
  }
  const known = new Set([...appMetricNames(), ...recordedNames(m.rules)]);
  for (const { path, expr } of shippedExpressions(model)) {
    for (const name of metricNamesIn(expr)) {
      if (!known.has(name)) problems.push(`${path} names "${name}", which the app does not export (its metrics: charts/monitoring/app-metrics.ts)`);
    }
  }
  m.rules.alerts.forEach((a, i) => {
    const at = `monitoring.rules.alerts[${i}]`;
    if (!/^[A-Z][A-Za-z0-9]*$/.test(a.alert)) problems.push(`${at}.alert ("${a.alert}") must be a CamelCase name`);
    if (!isNonNegativeInt(a.forSeconds)) problems.push(`${at}.forSeconds (${a.forSeconds}) must be a non-negative integer`);
    if (!SEVERITIES.includes(a.severity)) problems.push(`${at}.severity ("${a.severity}") must be one of ${SEVERITIES.join(', ')}`);
    if (!a.summary.trim() || !a.description.trim()) problems.push(`${at} needs a summary and a description`);
  });
  return problems;
}
