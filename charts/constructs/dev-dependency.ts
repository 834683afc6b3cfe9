import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import type { DevDependencySpec, HealthCheckSpec, PortSpec } from '../model';
import { assertNoProblems, checkDevDependency, dependencyArgs, portNumber } from '../model';
import { StoreIngressPolicy } from './network-policies';
import { hardenPodTemplate, containerResources, containerSecurityContext, podSecurityContext, selectorLabels, writableMounts } from './pod';

export interface DevDependencyProps {
  /** The dependency as the deployment model describes it. */
  readonly spec: DevDependencySpec;
  /**
   * Where `spec` sits in the model; quoted in error messages.
   *
   * @default `devDependencies.<name>`
   */
  readonly specPath?: string;
  /** `app.kubernetes.io/name`; object names are `<appName>-<spec.name>`. */
  readonly appName: string;
  /** Secret holding `spec.secretEnv`'s values; required when `spec.secretEnv` is not empty. */
  readonly secret?: kplus.ISecret;
  /** Components of the app that connect to `spec.clientPort`. */
  readonly clients: readonly string[];
}

/** Probe timing for the stand-ins: generous start (initdb), quick readiness. */
const TIMING = {
  startup: { periodSeconds: Duration.seconds(2), timeoutSeconds: Duration.seconds(2), failureThreshold: 60 },
  liveness: { periodSeconds: Duration.seconds(10), timeoutSeconds: Duration.seconds(5), failureThreshold: 3 },
  readiness: { periodSeconds: Duration.seconds(5), timeoutSeconds: Duration.seconds(3), failureThreshold: 2 },
};

function probe(health: HealthCheckSpec, ports: readonly PortSpec[], kind: keyof typeof TIMING): kplus.Probe {
  if ('exec' in health) return kplus.Probe.fromCommand([...health.exec], TIMING[kind]);
  return kplus.Probe.fromHttpGet(health.httpGet.path, { port: portNumber(ports, health.httpGet.port), ...TIMING[kind] });
}

/**
 * A local stand-in for an external service (PostgreSQL, Redis, the mail catcher) for the dev
 * profile: one replica, data in emptyDirs (gone with the pod), a ClusterIP Service named like the
 * compose service with the app's prefix, hardened like the app's pods, and an ingress policy that
 * admits only its clients.
 */
export class DevDependency extends Construct {
  public readonly deployment: kplus.Deployment;
  public readonly service: kplus.Service;
  /** The Service's DNS name inside the namespace. */
  public readonly host: string;

  constructor(scope: Construct, id: string, props: DevDependencyProps) {
    super(scope, id);
    const { spec } = props;
    const specPath = props.specPath ?? `devDependencies.${spec.name}`;
    const problems = checkDevDependency(spec, specPath);
    if (Object.keys(spec.secretEnv).length > 0 && !props.secret) problems.push(`${specPath}.secretEnv needs a Secret to come from`);
    assertNoProblems(problems);
    const clientPort = portNumber(spec.ports, spec.clientPort)!;
    const args = dependencyArgs(spec);

    this.host = `${props.appName}-${spec.name}`;
    const selector = selectorLabels(props.appName, spec.name);
    const runAs = { user: spec.runAsUser };
    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name: this.host },
      replicas: 1,
      // Never two at once: the data lives in the pod.
      strategy: kplus.DeploymentStrategy.recreate(),
      select: false,
      podMetadata: { labels: selector },
      automountServiceAccountToken: false,
      securityContext: podSecurityContext(runAs),
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: selector }));
    hardenPodTemplate(this.deployment);
    const env: Record<string, kplus.EnvValue> = {};
    for (const [key, value] of Object.entries(spec.env).sort()) env[key] = kplus.EnvValue.fromValue(value);
    for (const key of Object.keys(spec.secretEnv).sort()) env[key] = kplus.EnvValue.fromSecretValue({ secret: props.secret!, key });
    this.deployment.addContainer({
      name: spec.name,
      image: spec.image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      args: args ? [...args] : undefined,
      ports: spec.ports.map((p) => ({ name: p.name, number: p.containerPort })),
      envVariables: env,
      resources: containerResources(spec.resources),
      securityContext: containerSecurityContext(runAs),
      startup: probe(spec.health, spec.ports, 'startup'),
      liveness: probe(spec.health, spec.ports, 'liveness'),
      readiness: probe(spec.health, spec.ports, 'readiness'),
      volumeMounts: writableMounts(this.deployment, spec.writablePaths),
    });

    this.service = new kplus.Service(this, 'Service', {
      metadata: { name: this.host },
      ports: spec.ports.map((p) => ({ name: p.name, port: p.containerPort, targetPort: p.containerPort })),
    });
    for (const [key, value] of Object.entries(selector)) this.service.selectLabel(key, value);

    new StoreIngressPolicy(this, 'Ingress', {
      appName: props.appName,
      component: spec.name,
      clientPort,
      clients: props.clients,
      uiPort: spec.uiPort ? portNumber(spec.ports, spec.uiPort.port) : undefined,
    });
  }
}
