/**
 * Building blocks shared by every pod the charts create: labels, the hardened security context,
 * resources, probes and environment rendered from the model's plain data.
 */
import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { HttpProbeSpec, PortSpec, ResolvedEnv, ResourcesSpec, Settings } from '../model';
import { isOptionalSecret, portNumber, settingValue } from '../model';

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

/**
 * Every capability, as Kubernetes spells it. cdk8s-plus-27's Capability enum has no member for
 * it, but passes the list to the manifest unchanged, so the cast is safe.
 */
const ALL_CAPABILITIES = 'ALL' as kplus.Capability;

/** Container-level restrictions: non-root, read-only root, no privilege escalation, no capabilities. */
export function containerSecurityContext(runAs: RunAs): kplus.ContainerSecurityContextProps {
  return {
    ensureNonRoot: true,
    user: runAs.user,
    group: runAs.group ?? runAs.user,
    privileged: false,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: [ALL_CAPABILITIES] },
  };
}

/**
 * Adds what cdk8s-plus-27 cannot express, through its escape hatch: the RuntimeDefault seccomp
 * profile, and the removal of the construct-address label it puts on pod templates (selection
 * uses `selectorLabels`). Both patches name fixed paths and apply when the chart is synthesized,
 * so it may be called at any point, before or after containers are added.
 */
export function hardenPodTemplate(workload: kplus.Workload): void {
  const resource = ApiObject.of(workload);
  resource.addJsonPatch(JsonPatch.add('/spec/template/spec/securityContext/seccompProfile', { type: 'RuntimeDefault' }));
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
  readonly config: Settings;
}

/** The container env: secrets and settings by reference, runtime values inline; sorted by name so the output is stable. */
export function envVariables(env: ResolvedEnv, sources: EnvSources): Record<string, kplus.EnvValue> {
  const entries: [string, kplus.EnvValue][] = [
    ...env.secrets.map((key): [string, kplus.EnvValue] => [key, kplus.EnvValue.fromSecretValue({ secret: sources.secret, key }, { optional: isOptionalSecret(key) })]),
    ...env.config.map((key): [string, kplus.EnvValue] => [
      key,
      sources.configMap ? kplus.EnvValue.fromConfigMap(sources.configMap, key) : kplus.EnvValue.fromValue(settingValue(sources.config, key)),
    ]),
    ...Object.entries(env.runtime).map(([key, value]): [string, kplus.EnvValue] => [key, kplus.EnvValue.fromValue(value)]),
  ];
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface AppContainerOptions {
  readonly name: string;
  /** Image reference, tag or digest included. */
  readonly image: string;
  /** Container args; the image's ENTRYPOINT stays in charge. */
  readonly args: readonly string[];
  readonly env: ResolvedEnv;
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
