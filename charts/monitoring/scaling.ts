/**
 * Scaling the worker on its backlog: the one query both renderings use (ready items, every queue:
 * a job counts one, a batch job of emails its full size; replicas deduplicated with `max by (queue)`), the prometheus-adapter rule that serves it as an
 * External metric, and the KEDA trigger. See the README's "Scaling" section for why.
 */
import { QUEUE_READY_ITEMS_METRIC } from '../../app/queue/metrics';

export type BacklogScaler = 'external-metric' | 'keda';

export interface BacklogScalingSpec {
  /**
   * `external-metric`: an autoscaling/v2 HPA with an External metric served by prometheus-adapter
   * (rules in k8s/addons/prometheus-adapter/); `keda`: a KEDA ScaledObject with a Prometheus
   * trigger on the same query (k8s/prod-keda/ renders this choice).
   */
  readonly scaler: BacklogScaler;
  /** Ready items (emails, deliveries: queue/jobs.ts itemsPerReadyJob) per worker replica the autoscaler aims for (HPA `AverageValue`, KEDA `threshold`). */
  readonly readyJobsPerReplica: number;
  /** The External metric's name as prometheus-adapter serves it. */
  readonly externalMetricName: string;
  /** Where KEDA queries Prometheus (in-cluster URL). */
  readonly prometheusUrl: string;
}

export type ScalingPolicy = { readonly type: 'Pods' | 'Percent'; readonly value: number; readonly periodSeconds: number };

export interface ScalingRulesSpec {
  readonly stabilizationWindowSeconds: number;
  readonly selectPolicy: 'Max' | 'Min';
  readonly policies: readonly ScalingPolicy[];
}

/** autoscaling/v2 `behavior`, rendered identically into the HPA and the ScaledObject. */
export interface ScalingBehaviorSpec {
  readonly scaleUp: ScalingRulesSpec;
  readonly scaleDown: ScalingRulesSpec;
}

/**
 * Label the monitors copy from the pods (`podTargetLabels`) so queries can select one
 * installation's series; compose and the tests set the same label on their targets.
 */
export const APP_SERIES_LABEL = 'app_kubernetes_io_name';

/** Ready items over every queue, replicas deduplicated: what the worker scales on. */
export function readyJobsQuery(matchers: string): string {
  return `sum(max by (queue) (${QUEUE_READY_ITEMS_METRIC}{${matchers}}))`;
}

/** The KEDA trigger's query: this installation's ready items (selected by app name). */
export function kedaQuery(appName: string): string {
  return readyJobsQuery(`${APP_SERIES_LABEL}="${appName}"`);
}

/**
 * prometheus-adapter `externalRules`: the External metric `<externalMetricName>` per namespace.
 * The adapter puts the HPA's namespace and metric selector into `<<.LabelMatchers>>`.
 */
export function adapterExternalRules(spec: BacklogScalingSpec) {
  return [
    {
      seriesQuery: `${QUEUE_READY_ITEMS_METRIC}{namespace!=""}`,
      resources: { overrides: { namespace: { resource: 'namespace' } } },
      name: { matches: `^${QUEUE_READY_ITEMS_METRIC}$`, as: spec.externalMetricName },
      metricsQuery: `sum by (namespace) (max by (namespace, queue) (<<.Series>>{<<.LabelMatchers>>}))`,
    },
  ];
}

/** The adapter's metricsQuery as the adapter sends it for a given set of label matchers. */
export function renderAdapterQuery(metricsQuery: string, labelMatchers: string): string {
  return metricsQuery.replace('<<.Series>>', QUEUE_READY_ITEMS_METRIC).replace('<<.LabelMatchers>>', labelMatchers);
}

/** The HPA's selector on the External metric: this installation's series only. */
export function externalMetricSelector(appName: string): Record<string, string> {
  return { [APP_SERIES_LABEL]: appName };
}

/** autoscaling/v2 behavior object. */
export function renderBehavior(b: ScalingBehaviorSpec) {
  const rules = (r: ScalingRulesSpec) => ({
    stabilizationWindowSeconds: r.stabilizationWindowSeconds,
    selectPolicy: r.selectPolicy,
    policies: r.policies.map((p) => ({ type: p.type, value: p.value, periodSeconds: p.periodSeconds })),
  });
  return { scaleUp: rules(b.scaleUp), scaleDown: rules(b.scaleDown) };
}
