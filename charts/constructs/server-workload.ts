import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import type { AutoscalingSpec, ResolvedEnv, ResourcesSpec, ServerWorkloadSpec } from '../model';
import { assertNoProblems, checkAppResources, checkAutoscaling, checkServerWorkload, portNumber } from '../model';
import { Autoscaler } from './autoscaler';
import { appContainer, hardenPodTemplate, EnvSources, httpProbe, podSecurityContext, RunAs, selectorLabels, writableMounts } from './pod';

/** The init container that holds a pod until the database schema is at the image's head. */
export interface MigrationWaitOptions {
  readonly args: readonly string[];
  readonly env: ResolvedEnv;
  readonly resources: ResourcesSpec;
}

export interface ServerWorkloadProps {
  /** The workload as the deployment model describes it. */
  readonly spec: ServerWorkloadSpec;
  /**
   * Where `spec` sits in the model; quoted in error messages.
   *
   * @default `workloads.<role>`
   */
  readonly specPath?: string;
  /** `app.kubernetes.io/name` of every object; the object names are `<appName>-<role>`. */
  readonly appName: string;
  /** Image reference, tag or digest included. */
  readonly image: string;
  /** Environment keys the container receives (already resolved for the profile). */
  readonly env: ResolvedEnv;
  readonly envSources: EnvSources;
  readonly serviceAccount: kplus.IServiceAccount;
  readonly runAs: RunAs;
  /** Adds the `migrate --wait` init container. */
  readonly migrationWait: MigrationWaitOptions;
  /**
   * Autoscaling bounds, when the profile overrides the model's.
   *
   * @default spec.autoscaling
   */
  readonly autoscaling?: AutoscalingSpec;
  /**
   * Where `autoscaling` sits in the model; quoted in error messages.
   *
   * @default `<specPath>.autoscaling`
   */
  readonly autoscalingPath?: string;
  /**
   * How often KEDA polls Prometheus, when the backlog scaler is KEDA.
   *
   * @default 15
   */
  readonly pollingIntervalSeconds?: number;
  /**
   * Pod template annotations (a checksum of the settings rolls the pods when they change).
   *
   * @default - none
   */
  readonly podAnnotations?: Readonly<Record<string, string>>;
}

/**
 * A long-running role of the image (api or worker): a Deployment with a `migrate --wait` init
 * container, probes on the role's health endpoints and a hardened pod, plus its
 * autoscaler (HorizontalPodAutoscaler or KEDA ScaledObject), PodDisruptionBudget and, when the role
 * takes traffic, a Service.
 *
 * Rolling updates never take a ready pod away before its replacement is ready
 * (`maxUnavailable: 0`); the grace period lets the process finish its own shutdown deadline.
 */
export class ServerWorkload extends Construct {
  public readonly deployment: kplus.Deployment;
  public readonly autoscaler: Autoscaler;
  public readonly disruptionBudget: kplus.k8s.KubePodDisruptionBudget;
  /** Present when the spec declares a Service. */
  public readonly service?: kplus.Service;
  /** Labels that select this workload's pods. */
  public readonly selector: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: ServerWorkloadProps) {
    super(scope, id);
    const { spec } = props;
    const specPath = props.specPath ?? `workloads.${spec.role}`;
    const autoscaling = props.autoscaling ?? spec.autoscaling;
    assertNoProblems([
      ...checkServerWorkload(spec, specPath),
      ...checkAppResources(props.migrationWait.resources, `${specPath} init container resources`),
      ...(props.autoscaling ? checkAutoscaling(autoscaling, props.autoscalingPath ?? `${specPath}.autoscaling`) : []),
    ]);

    const name = `${props.appName}-${spec.role}`;
    this.selector = selectorLabels(props.appName, spec.role);

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name },
      select: false,
      podMetadata: { labels: this.selector, annotations: { ...props.podAnnotations } },
      serviceAccount: props.serviceAccount,
      automountServiceAccountToken: false,
      securityContext: podSecurityContext(props.runAs),
      terminationGracePeriod: Duration.seconds(spec.terminationGracePeriodSeconds),
      strategy: kplus.DeploymentStrategy.rollingUpdate({
        maxSurge: kplus.PercentOrAbsolute.percent(25),
        maxUnavailable: kplus.PercentOrAbsolute.absolute(0),
      }),
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: this.selector }));
    hardenPodTemplate(this.deployment);

    const mounts = writableMounts(this.deployment, ['/tmp']);
    const { image, envSources, runAs } = props;
    this.deployment.addInitContainer(appContainer({ name: 'migrate-wait', image, envSources, runAs, mounts, ...props.migrationWait }));
    this.deployment.addContainer({
      ...appContainer({ name: spec.role, image, args: spec.args, env: props.env, envSources, resources: spec.resources, runAs, mounts }),
      ports: spec.ports.map((p) => ({ name: p.name, number: p.containerPort })),
      startup: httpProbe(spec.probes.startup, spec.ports),
      liveness: httpProbe(spec.probes.liveness, spec.ports),
      readiness: httpProbe(spec.probes.readiness, spec.ports),
    });

    if (spec.service) {
      this.service = new kplus.Service(this, 'Service', {
        metadata: { name },
        type: spec.service.type === 'LoadBalancer' ? kplus.ServiceType.LOAD_BALANCER : kplus.ServiceType.CLUSTER_IP,
        ports: [{ name: spec.service.targetPort, port: spec.service.port, targetPort: portNumber(spec.ports, spec.service.targetPort) }],
      });
      for (const [key, value] of Object.entries(this.selector)) this.service.selectLabel(key, value);
    }

    // The autoscaler owns the replica count: the Deployment carries none.
    this.deployment.markHasAutoscaler();
    this.autoscaler = new Autoscaler(this, 'Autoscaler', { name, appName: props.appName, autoscaling, pollingIntervalSeconds: props.pollingIntervalSeconds ?? 15 });

    // maxUnavailable rather than minAvailable: evictions go one pod at a time, and a single-replica
    // (dev) workload does not block node drains.
    this.disruptionBudget = new kplus.k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { name },
      spec: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(1), selector: { matchLabels: { ...this.selector } } },
    });
  }
}
