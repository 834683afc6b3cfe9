/**
 * The deployment model's vocabulary and shapes: what a workload, a dev dependency, a profile and
 * the whole model are, as plain readonly data, and the error a broken model raises.
 *
 * Environment names are not listed here: they are the keys `app/config.ts` reads (`SettingKey`,
 * `SecretKey`), so a name the app does not know cannot be typed, and `validateModel` refuses one
 * that slips in at run time (the app would silently ignore it).
 *
 * Adding a workload: its role in `Role` (and `SERVER_ROLES` when it is long-running), its spec in
 * `DeploymentModel.workloads`, its values in `charts/model/easeemail.ts`. Adding an output: a
 * renderer that reads the model and the derivations in `charts/model/derive.ts`, nothing else.
 */
import type { MonitoringSpec } from '../monitoring/rules';
import type { BacklogScalingSpec, ScalingBehaviorSpec } from '../monitoring/scaling';

export type { MonitoringSpec } from '../monitoring/rules';
export type { BacklogScaler, BacklogScalingSpec, ScalingBehaviorSpec } from '../monitoring/scaling';
import type { SecretKey, SettingKey } from '../../app/config';

export type { SecretKey, SettingKey };

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/** The image's roles, chosen by the container arguments (the ENTRYPOINT stays the image's own). */
export type Role = 'api' | 'worker' | 'inbound' | 'migrate';
/** Roles that run as long-lived Deployments. */
export type ServerRole = Exclude<Role, 'migrate'>;
export const SERVER_ROLES: readonly ServerRole[] = ['api', 'worker', 'inbound'];
export const ROLES: readonly Role[] = ['api', 'worker', 'inbound', 'migrate'];

/** A setting of the app (`app/config.ts` reads it): from the ConfigMap (Kubernetes) or `environment` (compose). */
export type ConfigKey = SettingKey;

/**
 * Variables the runtime reads rather than the app, derived by the model (never set by hand):
 * `NODE_OPTIONS` carries the V8 heap cap derived from the memory limit (`heapLimitMiB`);
 * `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` bound glibc malloc (`MALLOC_ENV`).
 */
export const RUNTIME_ENV_KEYS = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_'] as const;
export type RuntimeEnvKey = (typeof RUNTIME_ENV_KEYS)[number];

export type ProfileName = 'dev' | 'prod';
export const PROFILES: readonly ProfileName[] = ['dev', 'prod'];

/** What a workload talks to; drives NetworkPolicies, compose networks and dev data-store ingress. */
export type Peer = 'postgres' | 'redis' | 'smtp' | 'webhooks';

/** The in-cluster (dev) and compose stand-ins for the external services. */
export type DevDependencyName = 'db' | 'redis' | 'mailpit';
export const DEV_DEPENDENCIES: readonly DevDependencyName[] = ['db', 'redis', 'mailpit'];

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

export interface PortSpec {
  /** IANA-style port name (at most 15 characters), referenced by probes and Services. */
  readonly name: string;
  readonly containerPort: number;
}

export interface HttpProbeSpec {
  /** A path the process serves, e.g. `/health/live`. */
  readonly path: string;
  /** Name of one of the workload's `ports`. */
  readonly port: string;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly failureThreshold: number;
}

export interface ProbesSpec {
  /** Holds liveness and readiness off until the process has started (entrypoint waits included). */
  readonly startup: HttpProbeSpec;
  readonly liveness: HttpProbeSpec;
  readonly readiness: HttpProbeSpec;
}

export interface ResourcesSpec {
  readonly cpuRequestMillis: number;
  /**
   * CPU limit. Unset on purpose for the app: CFS throttling adds latency spikes, and the HPA
   * scales on the request.
   *
   * @default - no CPU limit
   */
  readonly cpuLimitMillis?: number;
  readonly memoryRequestMiB: number;
  /**
   * Hard limit; the same value becomes `deploy.resources.limits.memory` in compose. For the app's
   * Node processes the V8 heap cap is derived from it (`heapLimitMiB`).
   */
  readonly memoryLimitMiB: number;
}

export interface AutoscalingSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Average CPU utilisation, in percent of the CPU request, that the HPA aims for. */
  readonly targetCpuUtilizationPercent: number;
  /**
   * Scale on ready jobs as well (the worker): through an External metric or KEDA (README, Scaling).
   *
   * @default - CPU only
   */
  readonly backlog?: BacklogScalingSpec;
  /** How fast replicas are added and removed (HPA `behavior`; the ScaledObject gets the same). */
  readonly behavior: ScalingBehaviorSpec;
}

/** Settings with their values: keys `app/config.ts` reads, values as the environment carries them. */
export type Settings = Partial<Readonly<Record<ConfigKey, string>>>;

/** Which environment variables a workload receives; values come from the profile. */
export interface EnvSpec {
  readonly secrets: readonly SecretKey[];
  /** Each needs a value in `sharedConfig`. */
  readonly config: readonly ConfigKey[];
}

/** A container's environment under a profile (`resolveEnv`): names sorted, runtime values derived. */
export interface ResolvedEnv extends EnvSpec {
  /** Runtime variables with their derived values (the heap cap), written inline. */
  readonly runtime: Readonly<Record<RuntimeEnvKey, string>>;
}

export interface ServerWorkloadSpec {
  readonly role: ServerRole;
  /** Container args (the image's ENTRYPOINT dispatches on them). */
  readonly args: readonly string[];
  readonly ports: readonly PortSpec[];
  /** The config key that tells the process which port to serve health on; must equal that port. */
  readonly healthPortKey: ConfigKey;
  readonly probes: ProbesSpec;
  /**
   * Exec-form health check for runtimes without HTTP probes (compose, the image HEALTHCHECK).
   * It checks the liveness path on the port named by `healthPortKey`.
   */
  readonly healthcheckCommand: readonly string[];
  readonly resources: ResourcesSpec;
  readonly autoscaling: AutoscalingSpec;
  readonly env: EnvSpec;
  readonly peers: readonly Peer[];
  /**
   * The Service in front of the pods, when the role takes traffic. Its target port is open to any
   * source in the NetworkPolicy.
   */
  readonly service?: {
    readonly port: number;
    readonly targetPort: string;
    /**
     * `LoadBalancer` for traffic from outside the cluster that no ingress controller carries (SMTP).
     *
     * @default 'ClusterIP'
     */
    readonly type?: 'ClusterIP' | 'LoadBalancer';
  };
  /** Must exceed SHUTDOWN_TIMEOUT_MS, or the kubelet kills the process mid-drain. */
  readonly terminationGracePeriodSeconds: number;
  /** Published host port in compose: `${variable:-default}:containerPort`. */
  readonly composePublish?: ComposePublishSpec;
  /** Where Prometheus scrapes the process (a PodMonitor per role that has it). */
  readonly metrics?: { readonly port: string; readonly path: string };
}

export interface MigrationSpec {
  readonly role: 'migrate';
  readonly args: readonly string[];
  /** Args of the init container in every api/worker pod: block until the schema is at the image's head. */
  readonly waitArgs: readonly string[];
  readonly resources: ResourcesSpec;
  readonly env: EnvSpec;
  readonly peers: readonly Peer[];
  readonly job: {
    readonly backoffLimit: number;
    /** Upper bound on one migration run, retries included. */
    readonly activeDeadlineSeconds: number;
    /** Keeps the finished Job (and its logs) around this long, then Kubernetes deletes it. */
    readonly ttlSecondsAfterFinished: number;
  };
}

export interface ComposePublishSpec {
  /** Name of the port to publish. */
  readonly port: string;
  /** Environment variable that overrides the host port. */
  readonly hostPortVariable: string;
  readonly defaultHostPort: number;
}

export type HealthCheckSpec =
  | { readonly exec: readonly string[] }
  | { readonly httpGet: { readonly path: string; readonly port: string } };

/** Redis as BullMQ needs it: a memory cap inside the container's limit, and no eviction. */
export interface RedisServerSpec {
  /**
   * `--maxmemory`, in percent of the container's memory limit. The rest covers what Redis does not
   * count as used memory: allocator fragmentation, and pages copied while a snapshot fork runs.
   */
  readonly maxMemoryPercent: number;
  /**
   * `--maxmemory-policy`. BullMQ needs `noeviction`: an evicted job key is a lost email until the
   * sweep finds it; with noeviction a full Redis refuses writes instead, which the app sees.
   */
  readonly maxMemoryPolicy: 'noeviction';
}

export interface DevDependencySpec {
  readonly name: DevDependencyName;
  /** The external service this stands in for. */
  readonly provides: Exclude<Peer, 'webhooks'>;
  /** Third-party image, with an explicit tag unless `floatingTagReason` says why not. */
  readonly image: string;
  /** Why the image carries no version tag; required when it has none. */
  readonly floatingTagReason?: string;
  /** Container args, after the derived server flags (see `dependencyArgs`). */
  readonly args?: readonly string[];
  /** Present on the Redis stand-in: its memory cap and eviction policy, rendered as server flags. */
  readonly redisServer?: RedisServerSpec;
  readonly env: Readonly<Record<string, string>>;
  /** Credentials: a dev Secret in Kubernetes, literal values in compose. */
  readonly secretEnv: Readonly<Record<string, string>>;
  readonly ports: readonly PortSpec[];
  /** The port the app's clients use (SMTP for the mail catcher). */
  readonly clientPort: string;
  readonly health: HealthCheckSpec;
  readonly resources: ResourcesSpec;
  /** The image's own unprivileged user (Kubernetes runs it as this uid/gid). */
  readonly runAsUser: number;
  /** Directories the process writes; emptyDirs under a read-only root filesystem. */
  readonly writablePaths: readonly string[];
  /** Directory kept in a named volume in compose, so `docker-compose down` keeps the data. */
  readonly composeVolumePath?: string;
  /** Ports reachable from outside (a UI); published in compose, open to ingress in Kubernetes. */
  readonly uiPort?: ComposePublishSpec;
}

export type SecretSource =
  /** The operator creates the Secret; the manifests only reference it. */
  | { readonly kind: 'external' }
  /** The manifests carry a Secret with obviously-dev values. */
  | { readonly kind: 'generated' };

export interface ProfileSpec {
  readonly name: ProfileName;
  /** Values for the keys that differ from `sharedConfig` (only keys it sets). */
  readonly config: Settings;
  readonly secret: SecretSource;
  /** Secret keys only this profile references (the bootstrap API key is a local convenience). */
  readonly extraSecretKeys: readonly SecretKey[];
  /** Adds in-cluster PostgreSQL, Redis and the mail catcher. */
  readonly devDependencies: boolean;
  /** Replaces a workload's autoscaling bounds (a laptop cluster need not run 2 api pods). */
  readonly autoscaling: Partial<Readonly<Record<ServerRole, AutoscalingSpec>>>;
}

export interface ImageReference {
  /** The full reference as written in manifests, e.g. `easeemail:0.1.0`. */
  readonly ref: string;
  /** The tag, or `sha256-<12 hex>` for a digest: the release label and the Job name suffix. */
  readonly version: string;
}

export interface NetworkSpec {
  /** Where cluster DNS runs (egress on 53/UDP and 53/TCP is allowed there). */
  readonly dns: { readonly namespace: string; readonly podLabels: Readonly<Record<string, string>> };
  readonly postgresPort: number;
  readonly redisPort: number;
  readonly smtpPorts: readonly number[];
  readonly webhookPorts: readonly number[];
  /** Excluded from webhook egress unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is "true". */
  readonly privateRanges: { readonly ipv4: readonly string[]; readonly ipv6: readonly string[] };
}

export interface DeploymentModel {
  /** Prefix of every object name and the `app.kubernetes.io/name` label. */
  readonly name: string;
  readonly image: ImageReference;
  /** Name of the Secret the workloads read (prod: created by the operator). */
  readonly secretName: string;
  readonly configMapName: string;
  /** Unprivileged uid/gid/fsGroup of the app image. */
  readonly appUser: number;
  /** The settings every profile sets (the ConfigMap's keys); unset keys keep the app's defaults. */
  readonly sharedConfig: Settings;
  readonly profiles: Readonly<Record<ProfileName, ProfileSpec>>;
  readonly workloads: {
    readonly api: ServerWorkloadSpec;
    readonly worker: ServerWorkloadSpec;
    readonly inbound: ServerWorkloadSpec;
    readonly migrate: MigrationSpec;
  };
  readonly devDependencies: Readonly<Record<DevDependencyName, DevDependencySpec>>;
  readonly network: NetworkSpec;
  /** Scraping, rules and alert thresholds, the dashboard (charts/monitoring/). */
  readonly monitoring: MonitoringSpec;
  /** Compose healthcheck timing: short intervals suit local work and the test lab. */
  readonly composeHealthcheck: {
    readonly intervalSeconds: number;
    readonly timeoutSeconds: number;
    readonly retries: number;
    readonly startPeriodSeconds: number;
  };
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** A model that breaks an invariant; `problems` names each offending field. */
export class ModelError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid deployment model:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ModelError';
  }
}

/** Throws a ModelError when `problems` is not empty. */
export function assertNoProblems(problems: readonly string[]): void {
  if (problems.length > 0) throw new ModelError(problems);
}

