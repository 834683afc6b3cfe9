/**
 * Building blocks shared by every pod the charts create: labels, the hardened security context,
 * resources, probes and environment rendered from the model's plain data.
 */
import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { ConfigKey, EnvSpec, HttpProbeSpec, PortSpec, ResourcesSpec } from '../model';
import { isOptionalSecret, portNumber } from '../model';

export const NAME_LABEL = 'app.kubernetes.io/name';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';

/** Labels that select one component's pods; stable across releases (selectors are immutable). */
export function selectorLabels(appName: string, component: string): Record<string, string> {
  return { [NAME_LABEL]: appName, [COMPONENT_LABEL]: component };
}

/** The unprivileged identity a pod runs as. */
export interface RunAs {
  readonly user: number;
  /** @default - the same as `user` */
  readonly group?: number;
}

/** Pod-level identity: non-root, and volumes group-owned by the same gid. */
export function podSecurityContext(runAs: RunAs): kplus.PodSecurityContextProps {
  const group = runAs.group ?? runAs.user;
  return {
    ensureNonRoot: true,
    user: runAs.user,
    group,
    fsGroup: group,
    fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
  };
}

/** Container-level restrictions; capabilities and seccomp are completed by `completePodTemplate`. */
export function containerSecurityContext(runAs: RunAs): kplus.ContainerSecurityContextProps {
  return {
    ensureNonRoot: true,
    user: runAs.user,
    group: runAs.group ?? runAs.user,
    privileged: false,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
  };
}

/**
 * Adds what cdk8s-plus-27 cannot express, through its escape hatch: the RuntimeDefault seccomp
 * profile, `capabilities.drop: [ALL]` on every container (its Capability enum has no ALL), and
 * removes the construct-address label it puts on pod templates (selection uses `selectorLabels`).
 * Call it after the last container has been added.
 */
export function completePodTemplate(workload: kplus.Workload): void {
  const resource = ApiObject.of(workload);
  resource.addJsonPatch(JsonPatch.add('/spec/template/spec/securityContext/seccompProfile', { type: 'RuntimeDefault' }));
  const dropAll = { drop: ['ALL'] };
  workload.initContainers.forEach((_, i) => {
    resource.addJsonPatch(JsonPatch.add(`/spec/template/spec/initContainers/${i}/securityContext/capabilities`, dropAll));
  });
  workload.containers.forEach((_, i) => {
    resource.addJsonPatch(JsonPatch.add(`/spec/template/spec/containers/${i}/securityContext/capabilities`, dropAll));
  });
  resource.addJsonPatch(JsonPatch.remove(`/spec/template/metadata/labels/${kplus.Pod.ADDRESS_LABEL.replace('/', '~1')}`));
}

export function containerResources(r: ResourcesSpec): kplus.ContainerResources {
  return {
    cpu: {
      request: kplus.Cpu.millis(r.cpuRequestMillis),
      limit: r.cpuLimitMillis === undefined ? undefined : kplus.Cpu.millis(r.cpuLimitMillis),
    },
    memory: { request: Size.mebibytes(r.memoryRequestMiB), limit: Size.mebibytes(r.memoryLimitMiB) },
  };
}

export function httpProbe(p: HttpProbeSpec, ports: readonly PortSpec[]): kplus.Probe {
  const port = portNumber(ports, p.port);
  if (port === undefined) throw new Error(`probe port "${p.port}" is not a port of the container`);
  return kplus.Probe.fromHttpGet(p.path, {
    port,
    periodSeconds: Duration.seconds(p.periodSeconds),
    timeoutSeconds: Duration.seconds(p.timeoutSeconds),
    failureThreshold: p.failureThreshold,
  });
}

/** One emptyDir per writable path, named after the path (`/var/run/postgresql` → `var-run-postgresql`). */
export function writableMounts(scope: kplus.Workload, paths: readonly string[]): kplus.VolumeMount[] {
  return paths.map((path) => {
    const name = path.replace(/^\/+/, '').replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    return { path, volume: kplus.Volume.fromEmptyDir(scope, `volume-${name}`, name) };
  });
}

/** Where a workload's environment values come from. */
export interface EnvSources {
  /** Secret holding the credentials. */
  readonly secret: kplus.ISecret;
  /**
   * ConfigMap holding the settings. Without one the values are written inline, for pods that may
   * start before the ConfigMap exists (Helm and Argo CD run hooks before other resources).
   *
   * @default - values inline
   */
  readonly configMap?: kplus.IConfigMap;
  /** The settings' values. */
  readonly config: Readonly<Record<ConfigKey, string>>;
}

/** The container env for the given keys, sorted by name so the output is stable. */
export function envVariables(keys: EnvSpec, sources: EnvSources): Record<string, kplus.EnvValue> {
  const entries: [string, kplus.EnvValue][] = [
    ...keys.secrets.map((key): [string, kplus.EnvValue] => [key, kplus.EnvValue.fromSecretValue({ secret: sources.secret, key }, { optional: isOptionalSecret(key) })]),
    ...keys.config.map((key): [string, kplus.EnvValue] => [
      key,
      sources.configMap ? kplus.EnvValue.fromConfigMap(sources.configMap, key) : kplus.EnvValue.fromValue(sources.config[key]),
    ]),
  ];
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface AppContainerOptions {
  readonly name: string;
  /** Image reference, tag or digest included. */
  readonly image: string;
  /** Container args; the image's ENTRYPOINT stays in charge. */
  readonly args: readonly string[];
  readonly env: EnvSpec;
  readonly envSources: EnvSources;
  readonly resources: ResourcesSpec;
  readonly runAs: RunAs;
  /** The writable mounts under the read-only root (at least `/tmp`). */
  readonly mounts: kplus.VolumeMount[];
}

/** A container of the app image (main, init or Job container), before ports and probes. */
export function appContainer(o: AppContainerOptions): kplus.ContainerProps {
  return {
    name: o.name,
    image: o.image,
    imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
    args: [...o.args],
    envVariables: envVariables(o.env, o.envSources),
    resources: containerResources(o.resources),
    securityContext: containerSecurityContext(o.runAs),
    volumeMounts: o.mounts,
  };
}
