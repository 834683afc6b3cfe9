import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { AutoscalingSpec } from '../model';
import { externalMetricSelector, kedaQuery, renderBehavior } from '../monitoring/scaling';

export interface AutoscalerProps {
  /** Name of the Deployment it scales; also the autoscaler's own name. */
  readonly name: string;
  /** `app.kubernetes.io/name`: selects this installation's series in the backlog queries. */
  readonly appName: string;
  readonly autoscaling: AutoscalingSpec;
  /** How often KEDA asks Prometheus (the scrape interval: asking more often sees nothing new). */
  readonly pollingIntervalSeconds: number;
}

/** A Kubernetes quantity for a target value (fractions in milli-units). */
function quantity(n: number): string {
  return Number.isInteger(n) ? String(n) : `${Math.round(n * 1000)}m`;
}

/**
 * Scales a Deployment as `autoscaling` says: an autoscaling/v2 HorizontalPodAutoscaler on CPU
 * and, with `backlog.scaler: external-metric`, on ready jobs per replica through an External
 * metric (served by prometheus-adapter: k8s/addons/prometheus-adapter/); or, with
 * `backlog.scaler: keda`, a KEDA ScaledObject with the same bounds, behaviour and targets (KEDA
 * creates and owns the HPA, so none is rendered beside it).
 *
 * Plain ApiObjects rather than cdk8s-plus' HorizontalPodAutoscaler: it has no External metric
 * with a selector, and the ScaledObject must carry exactly the same behaviour.
 */
export class Autoscaler extends Construct {
  public readonly object: ApiObject;

  constructor(scope: Construct, id: string, props: AutoscalerProps) {
    super(scope, id);
    const { name, autoscaling: a } = props;
    const behavior = renderBehavior(a.behavior);
    if (a.backlog?.scaler === 'keda') {
      this.object = new ApiObject(this, 'ScaledObject', {
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'ScaledObject',
        metadata: { name },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
          minReplicaCount: a.minReplicas,
          maxReplicaCount: a.maxReplicas,
          pollingInterval: props.pollingIntervalSeconds,
          advanced: { horizontalPodAutoscalerConfig: { name, behavior } },
          triggers: [
            {
              type: 'prometheus',
              metricType: 'AverageValue',
              metadata: { serverAddress: a.backlog.prometheusUrl, query: kedaQuery(props.appName), threshold: quantity(a.backlog.readyJobsPerReplica) },
            },
            { type: 'cpu', metricType: 'Utilization', metadata: { value: String(a.targetCpuUtilizationPercent) } },
          ],
        },
      });
      return;
    }
    const cpu = { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: a.targetCpuUtilizationPercent } } };
    const backlog = a.backlog && {
      type: 'External',
      external: {
        metric: { name: a.backlog.externalMetricName, selector: { matchLabels: externalMetricSelector(props.appName) } },
        target: { type: 'AverageValue', averageValue: quantity(a.backlog.readyJobsPerReplica) },
      },
    };
    this.object = new ApiObject(this, 'HorizontalPodAutoscaler', {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
        minReplicas: a.minReplicas,
        maxReplicas: a.maxReplicas,
        metrics: backlog ? [cpu, backlog] : [cpu],
        behavior,
      },
    });
  }
}
