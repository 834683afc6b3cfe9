/**
 * The deployment model: every EaseEmail workload described once (image, arguments, environment
 * and where each value comes from, ports, probes, resources, scaling, network peers).
 *
 * Two renderers read it and nothing else: the cdk8s charts (`charts/main.ts`) for Kubernetes and
 * the compose generator (`compose/generate.ts`). Anything both sides must agree on lives here, so
 * they cannot drift; `test/manifests/parity.test.ts` checks the rendered outputs against each other.
 *
 * The model is plain data. `validateModel` checks every invariant at once and names the field of
 * each violation; the charts and the compose generator refuse a model that fails it.
 */
import packageJson from '../package.json';

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/** The image's roles, chosen by the container arguments (the ENTRYPOINT stays the image's own). */
export type Role = 'api' | 'worker' | 'migrate';
/** Roles that run as long-lived Deployments. */
export type ServerRole = Exclude<Role, 'migrate'>;
export const SERVER_ROLES: readonly ServerRole[] = ['api', 'worker'];
export const ROLES: readonly Role[] = ['api', 'worker', 'migrate'];

/** Values that come from the Secret (Kubernetes) or `${VAR:-dev default}` (compose). */
export const SECRET_KEYS = ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'ENCRYPTION_KEY', 'BOOTSTRAP_API_KEY'] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** Values that come from the ConfigMap (Kubernetes) or `environment` (compose). */
export const CONFIG_KEYS = [
  'LOG_LEVEL',
  'MAIL_FROM',
  'PORT',
  'RUN_MIGRATIONS',
  'SHUTDOWN_TIMEOUT_MS',
  'WEBHOOK_ALLOW_PRIVATE_NETWORKS',
  'WORKER_CONCURRENCY',
  'WORKER_HEALTH_PORT',
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

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
  /** Hard limit; the same value becomes `deploy.resources.limits.memory` in compose. */
  readonly memoryLimitMiB: number;
}

export interface AutoscalingSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Average CPU utilisation, in percent of the CPU request, that the HPA aims for. */
  readonly targetCpuUtilizationPercent: number;
}

/** Which environment variables a workload receives; values come from the profile. */
export interface EnvSpec {
  readonly secrets: readonly SecretKey[];
  readonly config: readonly ConfigKey[];
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
  /** Port of the ClusterIP Service in front of the pods, when the role takes traffic. */
  readonly service?: { readonly port: number; readonly targetPort: string };
  /** Must exceed SHUTDOWN_TIMEOUT_MS, or the kubelet kills the process mid-drain. */
  readonly terminationGracePeriodSeconds: number;
  /** Published host port in compose: `${variable:-default}:containerPort`. */
  readonly composePublish?: ComposePublishSpec;
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

export interface DevDependencySpec {
  readonly name: DevDependencyName;
  /** The external service this stands in for. */
  readonly provides: Exclude<Peer, 'webhooks'>;
  /** Third-party image, with an explicit tag unless `floatingTagReason` says why not. */
  readonly image: string;
  /** Why the image carries no version tag; required when it has none. */
  readonly floatingTagReason?: string;
  readonly args?: readonly string[];
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
  /** Values for the keys that differ from `sharedConfig`. */
  readonly config: Partial<Readonly<Record<ConfigKey, string>>>;
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
  readonly sharedConfig: Readonly<Record<ConfigKey, string>>;
  readonly profiles: Readonly<Record<ProfileName, ProfileSpec>>;
  readonly workloads: { readonly api: ServerWorkloadSpec; readonly worker: ServerWorkloadSpec; readonly migrate: MigrationSpec };
  readonly devDependencies: Readonly<Record<DevDependencyName, DevDependencySpec>>;
  readonly network: NetworkSpec;
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

// ---------------------------------------------------------------------------------------------
// Image
// ---------------------------------------------------------------------------------------------

/**
 * Parses an image reference. A tag or a digest is required and `latest` is refused: manifests
 * must name exactly the build they were made for, and the Job name is derived from it.
 */
export function parseImage(ref: string, field = 'image'): ImageReference {
  const at = ref.indexOf('@');
  if (at >= 0) {
    const digest = ref.slice(at + 1);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new ModelError([`${field} ("${ref}") has a malformed digest`]);
    return { ref, version: `sha256-${digest.slice(7, 19)}` };
  }
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon <= lastSlash) throw new ModelError([`${field} ("${ref}") needs an explicit tag such as ":${packageJson.version}"`]);
  const tag = ref.slice(colon + 1);
  if (tag === 'latest') throw new ModelError([`${field} ("${ref}") must not use the "latest" tag`]);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new ModelError([`${field} ("${ref}") has an invalid tag`]);
  return { ref, version: tag };
}

/** `<package name>:<package version>`, the image `npm run synth` writes unless told otherwise. */
export const DEFAULT_IMAGE = `${packageJson.name}:${packageJson.version}`;

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

export interface ModelOptions {
  /**
   * Image reference for api, worker and migrate.
   *
   * @default DEFAULT_IMAGE (`easeemail:<package.json version>`)
   */
  readonly image?: string;
}

const API_PORT = 8000;
const WORKER_HEALTH_PORT = 8001;
const SHUTDOWN_TIMEOUT_MS = 25_000;

/** Startup: up to 2 min for the entrypoint's bounded wait for PostgreSQL/Redis plus boot. */
function probes(port: string): ProbesSpec {
  return {
    startup: { path: '/health/live', port, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 60 },
    liveness: { path: '/health/live', port, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
    readiness: { path: '/health/ready', port, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 },
  };
}

/** api and worker read every setting; the app parses one schema for all roles. */
const SERVER_ENV: EnvSpec = {
  secrets: ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'ENCRYPTION_KEY'],
  config: CONFIG_KEYS,
};

const DEV_DB = { user: 'easeemail', password: 'easeemail', database: 'easeemail' };

/** The EaseEmail deployment model. */
export function createModel(options: ModelOptions = {}): DeploymentModel {
  const name = packageJson.name;
  return {
    name,
    image: parseImage(options.image ?? DEFAULT_IMAGE),
    secretName: name,
    configMapName: `${name}-config`,
    appUser: 1000,
    sharedConfig: {
      LOG_LEVEL: 'info',
      MAIL_FROM: 'EaseEmail <notifications@example.com>',
      PORT: String(API_PORT),
      // Migrations run in the migrate Job / compose service, never inside api replicas.
      RUN_MIGRATIONS: 'false',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false',
      WORKER_CONCURRENCY: '10',
      WORKER_HEALTH_PORT: String(WORKER_HEALTH_PORT),
    },
    profiles: {
      prod: {
        name: 'prod',
        config: {},
        secret: { kind: 'external' },
        extraSecretKeys: [],
        devDependencies: false,
        autoscaling: {},
      },
      dev: {
        name: 'dev',
        // Local webhook receivers live on private networks.
        config: { MAIL_FROM: 'EaseEmail Dev <dev@easeemail.test>', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' },
        secret: { kind: 'generated' },
        extraSecretKeys: ['BOOTSTRAP_API_KEY'],
        devDependencies: true,
        autoscaling: {
          api: { minReplicas: 1, maxReplicas: 3, targetCpuUtilizationPercent: 70 },
          worker: { minReplicas: 1, maxReplicas: 3, targetCpuUtilizationPercent: 70 },
        },
      },
    },
    workloads: {
      api: {
        role: 'api',
        args: ['api'],
        ports: [{ name: 'http', containerPort: API_PORT }],
        healthPortKey: 'PORT',
        probes: probes('http'),
        healthcheckCommand: ['easeemail', 'healthcheck', 'api'],
        resources: { cpuRequestMillis: 250, memoryRequestMiB: 256, memoryLimitMiB: 512 },
        autoscaling: { minReplicas: 2, maxReplicas: 10, targetCpuUtilizationPercent: 70 },
        env: SERVER_ENV,
        peers: ['postgres', 'redis'],
        service: { port: 80, targetPort: 'http' },
        terminationGracePeriodSeconds: 35,
        composePublish: { port: 'http', hostPortVariable: 'EASEEMAIL_API_PORT', defaultHostPort: API_PORT },
      },
      worker: {
        role: 'worker',
        args: ['worker'],
        ports: [{ name: 'health', containerPort: WORKER_HEALTH_PORT }],
        healthPortKey: 'WORKER_HEALTH_PORT',
        probes: probes('health'),
        healthcheckCommand: ['easeemail', 'healthcheck', 'worker'],
        resources: { cpuRequestMillis: 250, memoryRequestMiB: 192, memoryLimitMiB: 384 },
        autoscaling: { minReplicas: 3, maxReplicas: 20, targetCpuUtilizationPercent: 70 },
        env: SERVER_ENV,
        peers: ['postgres', 'redis', 'smtp', 'webhooks'],
        terminationGracePeriodSeconds: 35,
      },
      migrate: {
        role: 'migrate',
        args: ['migrate'],
        waitArgs: ['migrate', '--wait', '--timeout', '300'],
        resources: { cpuRequestMillis: 100, memoryRequestMiB: 128, memoryLimitMiB: 256 },
        // The entrypoint waits for PostgreSQL and Redis before any role; migrate needs nothing else.
        env: { secrets: ['DATABASE_URL', 'REDIS_URL'], config: ['LOG_LEVEL'] },
        peers: ['postgres', 'redis'],
        job: { backoffLimit: 3, activeDeadlineSeconds: 900, ttlSecondsAfterFinished: 86_400 },
      },
    },
    devDependencies: {
      db: {
        name: 'db',
        provides: 'postgres',
        image: 'postgres:15-alpine',
        // A subdirectory: initdb must own PGDATA, and a volume's root belongs to root.
        env: { PGDATA: '/var/lib/postgresql/data/pgdata', POSTGRES_DB: DEV_DB.database, POSTGRES_USER: DEV_DB.user },
        secretEnv: { POSTGRES_PASSWORD: DEV_DB.password },
        ports: [{ name: 'postgres', containerPort: 5432 }],
        clientPort: 'postgres',
        health: { exec: ['pg_isready', '--host=127.0.0.1', `--username=${DEV_DB.user}`, `--dbname=${DEV_DB.database}`] },
        resources: { cpuRequestMillis: 100, memoryRequestMiB: 256, memoryLimitMiB: 512 },
        runAsUser: 70, // postgres in the alpine image
        writablePaths: ['/var/lib/postgresql/data', '/var/run/postgresql', '/tmp'],
        composeVolumePath: '/var/lib/postgresql/data',
      },
      redis: {
        name: 'redis',
        provides: 'redis',
        image: 'redis:7-alpine',
        env: {},
        secretEnv: {},
        ports: [{ name: 'redis', containerPort: 6379 }],
        clientPort: 'redis',
        health: { exec: ['redis-cli', 'ping'] },
        resources: { cpuRequestMillis: 50, memoryRequestMiB: 64, memoryLimitMiB: 256 },
        runAsUser: 999, // redis in the alpine image
        writablePaths: ['/data'],
      },
      mailpit: {
        name: 'mailpit',
        provides: 'smtp',
        image: 'axllent/mailpit',
        floatingTagReason: 'dev-only mail catcher; the contract and the container lab name it "axllent/mailpit"',
        env: {},
        secretEnv: {},
        ports: [
          { name: 'smtp', containerPort: 1025 },
          { name: 'http', containerPort: 8025 },
        ],
        clientPort: 'smtp',
        health: { httpGet: { path: '/readyz', port: 'http' } },
        resources: { cpuRequestMillis: 50, memoryRequestMiB: 64, memoryLimitMiB: 128 },
        runAsUser: 1000,
        writablePaths: ['/tmp'],
        uiPort: { port: 'http', hostPortVariable: 'MAILPIT_UI_PORT', defaultHostPort: 8025 },
      },
    },
    network: {
      dns: { namespace: 'kube-system', podLabels: { 'k8s-app': 'kube-dns' } },
      postgresPort: 5432,
      redisPort: 6379,
      // 1025: the dev mail catcher, and relays that listen unprivileged.
      smtpPorts: [25, 465, 587, 1025],
      webhookPorts: [80, 443],
      privateRanges: {
        ipv4: ['10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'],
        // loopback, IPv4-mapped (reaches the v4 ranges above), unique local, link-local
        ipv6: ['::1/128', '::ffff:0:0/96', 'fc00::/7', 'fe80::/10'],
      },
    },
    composeHealthcheck: { intervalSeconds: 2, timeoutSeconds: 3, retries: 5, startPeriodSeconds: 30 },
  };
}

// ---------------------------------------------------------------------------------------------
// Derived values
// ---------------------------------------------------------------------------------------------

/** Every config value of a profile: shared values overlaid with the profile's own. */
export function resolveConfig(model: DeploymentModel, profile: ProfileName): Readonly<Record<ConfigKey, string>> {
  return { ...model.sharedConfig, ...model.profiles[profile].config };
}

/** The env a workload receives under a profile: names sorted, so output is stable. */
export function resolveEnv(model: DeploymentModel, profile: ProfileName, role: Role): { secrets: SecretKey[]; config: ConfigKey[] } {
  const spec = model.workloads[role].env;
  const extra = role === 'api' ? model.profiles[profile].extraSecretKeys : [];
  return { secrets: [...new Set([...spec.secrets, ...extra])].sort(), config: [...spec.config].sort() };
}

/** Secret keys that a profile may leave unset (the app treats them as absent). */
export function isOptionalSecret(key: SecretKey): boolean {
  return key === 'BOOTSTRAP_API_KEY';
}

/** How workloads address the dev dependencies: Kubernetes Service names or compose service names. */
export type HostNaming = (dependency: DevDependencyName) => string;

/**
 * Obviously-dev secret values, for the dev profile's generated Secret and compose defaults.
 * ENCRYPTION_KEY is base64 of the 32 ASCII bytes "dev-only-encryption-key-32-bytes".
 */
export function devSecretValues(model: DeploymentModel, host: HostNaming): Readonly<Record<SecretKey, string>> {
  const { db, redis, mailpit } = model.devDependencies;
  const port = (dep: DevDependencySpec) => portNumber(dep.ports, dep.clientPort)!;
  return {
    DATABASE_URL: `postgresql://${db.env.POSTGRES_USER}:${db.secretEnv.POSTGRES_PASSWORD}@${host('db')}:${port(db)}/${db.env.POSTGRES_DB}`,
    REDIS_URL: `redis://${host('redis')}:${port(redis)}`,
    SMTP_URL: `smtp://${host('mailpit')}:${port(mailpit)}`,
    ENCRYPTION_KEY: Buffer.from('dev-only-encryption-key-32-bytes', 'ascii').toString('base64'),
    BOOTSTRAP_API_KEY: 'ee_dev_local_only_not_a_secret',
  };
}

/** Kubernetes object name of a workload or dev dependency: `easeemail-api`, `easeemail-db`. */
export function objectName(model: DeploymentModel, component: string): string {
  return `${model.name}-${component}`;
}

/** Per-release Job name: immutable specs are never patched, a new release gets a new Job. */
export function migrationJobName(model: DeploymentModel): string {
  const suffix = model.image.version.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return objectName(model, `migrate-${suffix}`).slice(0, 63).replace(/-+$/, '');
}

export function portNumber(ports: readonly PortSpec[], name: string): number | undefined {
  return ports.find((p) => p.name === name)?.containerPort;
}

// ---------------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------------

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const isPositiveInt = (n: number) => Number.isInteger(n) && n > 0;

/** Requests and limits: positive integers, each limit at least its request. */
export function checkResources(r: ResourcesSpec, path: string): string[] {
  const problems: string[] = [];
  for (const key of ['cpuRequestMillis', 'memoryRequestMiB', 'memoryLimitMiB'] as const) {
    if (!isPositiveInt(r[key])) problems.push(`${path}.${key} (${r[key]}) must be a positive integer`);
  }
  if (r.memoryLimitMiB < r.memoryRequestMiB) {
    problems.push(`${path}.memoryLimitMiB (${r.memoryLimitMiB}) must not be below ${path}.memoryRequestMiB (${r.memoryRequestMiB})`);
  }
  if (r.cpuLimitMillis !== undefined && !(r.cpuLimitMillis >= r.cpuRequestMillis)) {
    problems.push(`${path}.cpuLimitMillis (${r.cpuLimitMillis}) must not be below ${path}.cpuRequestMillis (${r.cpuRequestMillis})`);
  }
  return problems;
}

export function checkAutoscaling(a: AutoscalingSpec, path: string): string[] {
  const problems: string[] = [];
  if (!isPositiveInt(a.minReplicas)) problems.push(`${path}.minReplicas (${a.minReplicas}) must be a positive integer`);
  if (!isPositiveInt(a.maxReplicas)) problems.push(`${path}.maxReplicas (${a.maxReplicas}) must be a positive integer`);
  if (a.minReplicas > a.maxReplicas) {
    problems.push(`${path}.minReplicas (${a.minReplicas}) must not exceed ${path}.maxReplicas (${a.maxReplicas})`);
  }
  const t = a.targetCpuUtilizationPercent;
  if (!(Number.isInteger(t) && t > 0 && t <= 100)) problems.push(`${path}.targetCpuUtilizationPercent (${t}) must be an integer in 1..100`);
  return problems;
}

export function checkPorts(ports: readonly PortSpec[], path: string): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  ports.forEach((p, i) => {
    if (!/^[a-z0-9-]{1,15}$/.test(p.name) || !/[a-z]/.test(p.name)) problems.push(`${path}[${i}].name ("${p.name}") must be a port name of at most 15 lowercase letters, digits or "-"`);
    if (seen.has(p.name)) problems.push(`${path}[${i}].name ("${p.name}") is used twice`);
    seen.add(p.name);
    if (!(Number.isInteger(p.containerPort) && p.containerPort > 0 && p.containerPort < 65536)) {
      problems.push(`${path}[${i}].containerPort (${p.containerPort}) must be a port number`);
    }
  });
  return problems;
}

/** Every probe must target a port the container declares; timeouts must fit in the period. */
export function checkProbes(probeSpecs: ProbesSpec, ports: readonly PortSpec[], path: string): string[] {
  const problems: string[] = [];
  for (const kind of ['startup', 'liveness', 'readiness'] as const) {
    const p = probeSpecs[kind];
    const at = `${path}.${kind}`;
    if (portNumber(ports, p.port) === undefined) {
      problems.push(`${at}.port ("${p.port}") is not a port of the container (declared: ${ports.map((x) => x.name).join(', ') || 'none'})`);
    }
    if (!p.path.startsWith('/')) problems.push(`${at}.path ("${p.path}") must start with "/"`);
    for (const key of ['periodSeconds', 'timeoutSeconds', 'failureThreshold'] as const) {
      if (!isPositiveInt(p[key])) problems.push(`${at}.${key} (${p[key]}) must be a positive integer`);
    }
    if (p.timeoutSeconds > p.periodSeconds) problems.push(`${at}.timeoutSeconds (${p.timeoutSeconds}) must not exceed ${at}.periodSeconds (${p.periodSeconds})`);
  }
  return problems;
}

/** Exec-form arguments with whitespace break under podman, which splits them. */
export function checkExecForm(args: readonly string[], path: string): string[] {
  if (args.length === 0) return [`${path} must not be empty`];
  return args.flatMap((a, i) => (/\s/.test(a) ? [`${path}[${i}] ("${a}") must not contain whitespace (podman splits exec-form arguments)`] : []));
}

/** Invariants of an api/worker spec on its own (config-dependent ones are checked per profile). */
export function checkServerWorkload(w: ServerWorkloadSpec, path: string): string[] {
  const problems = [
    ...checkPorts(w.ports, `${path}.ports`),
    ...checkProbes(w.probes, w.ports, `${path}.probes`),
    ...checkResources(w.resources, `${path}.resources`),
    ...checkAutoscaling(w.autoscaling, `${path}.autoscaling`),
    ...checkExecForm(w.healthcheckCommand, `${path}.healthcheckCommand`),
  ];
  if (!w.env.config.includes(w.healthPortKey)) problems.push(`${path}.env.config must include ${w.healthPortKey} (${path}.healthPortKey)`);
  if (w.service && portNumber(w.ports, w.service.targetPort) === undefined) {
    problems.push(`${path}.service.targetPort ("${w.service.targetPort}") is not a port of the container`);
  }
  if (w.composePublish && portNumber(w.ports, w.composePublish.port) === undefined) {
    problems.push(`${path}.composePublish.port ("${w.composePublish.port}") is not a port of the container`);
  }
  return problems;
}

/** What a workload's config must agree with: its health port and the shutdown deadline. */
function checkServerWorkloadConfig(model: DeploymentModel, profile: ProfileName, w: ServerWorkloadSpec, path: string): string[] {
  const problems: string[] = [];
  const config = resolveConfig(model, profile);
  const field = (key: ConfigKey) => (key in model.profiles[profile].config ? `profiles.${profile}.config.${key}` : `sharedConfig.${key}`);
  const livenessPort = portNumber(w.ports, w.probes.liveness.port);
  if (livenessPort !== undefined && String(livenessPort) !== config[w.healthPortKey]) {
    problems.push(`${path}.probes.liveness.port ("${w.probes.liveness.port}" = ${livenessPort}) differs from ${field(w.healthPortKey)} ("${config[w.healthPortKey]}"), where the process serves health`);
  }
  if (!(w.terminationGracePeriodSeconds > Number(config.SHUTDOWN_TIMEOUT_MS) / 1000)) {
    problems.push(`${path}.terminationGracePeriodSeconds (${w.terminationGracePeriodSeconds}) must exceed ${field('SHUTDOWN_TIMEOUT_MS')} ("${config.SHUTDOWN_TIMEOUT_MS}" ms)`);
  }
  return problems;
}

export function checkDevDependency(d: DevDependencySpec, path: string): string[] {
  const problems = [...checkPorts(d.ports, `${path}.ports`), ...checkResources(d.resources, `${path}.resources`)];
  if (portNumber(d.ports, d.clientPort) === undefined) problems.push(`${path}.clientPort ("${d.clientPort}") is not a port of the container`);
  if ('httpGet' in d.health && portNumber(d.ports, d.health.httpGet.port) === undefined) {
    problems.push(`${path}.health.httpGet.port ("${d.health.httpGet.port}") is not a port of the container`);
  }
  if ('exec' in d.health) problems.push(...checkExecForm(d.health.exec, `${path}.health.exec`));
  if (d.uiPort && portNumber(d.ports, d.uiPort.port) === undefined) problems.push(`${path}.uiPort.port ("${d.uiPort.port}") is not a port of the container`);
  const tagged = /:[^/]+$/.test(d.image);
  if (/:latest$/.test(d.image)) problems.push(`${path}.image ("${d.image}") must not use the "latest" tag`);
  else if (!tagged && !d.floatingTagReason) problems.push(`${path}.image ("${d.image}") needs a version tag (or ${path}.floatingTagReason)`);
  if (!isPositiveInt(d.runAsUser)) problems.push(`${path}.runAsUser (${d.runAsUser}) must be a non-root uid`);
  return problems;
}

/** Checks every invariant of the model; throws one ModelError that lists all violations. */
export function validateModel(model: DeploymentModel): void {
  const problems: string[] = [];
  if (!DNS_LABEL.test(model.name)) problems.push(`name ("${model.name}") must be a DNS label`);
  if (!isPositiveInt(model.appUser)) problems.push(`appUser (${model.appUser}) must be a non-root uid`);
  for (const key of CONFIG_KEYS) {
    if (typeof model.sharedConfig[key] !== 'string') problems.push(`sharedConfig.${key} is missing`);
  }
  for (const role of SERVER_ROLES) problems.push(...checkServerWorkload(model.workloads[role], `workloads.${role}`));
  const migrate = model.workloads.migrate;
  problems.push(...checkResources(migrate.resources, 'workloads.migrate.resources'));
  if (!isPositiveInt(migrate.job.activeDeadlineSeconds)) problems.push(`workloads.migrate.job.activeDeadlineSeconds (${migrate.job.activeDeadlineSeconds}) must be a positive integer`);
  if (!(Number.isInteger(migrate.job.backoffLimit) && migrate.job.backoffLimit >= 0)) problems.push(`workloads.migrate.job.backoffLimit (${migrate.job.backoffLimit}) must be a non-negative integer`);
  for (const profile of PROFILES) {
    const p = model.profiles[profile];
    for (const key of Object.keys(p.config)) {
      if (!(CONFIG_KEYS as readonly string[]).includes(key)) problems.push(`profiles.${profile}.config.${key} is not a config key`);
    }
    for (const role of SERVER_ROLES) {
      const a = p.autoscaling[role];
      if (a) problems.push(...checkAutoscaling(a, `profiles.${profile}.autoscaling.${role}`));
    }
    for (const role of SERVER_ROLES) problems.push(...checkServerWorkloadConfig(model, profile, model.workloads[role], `workloads.${role}`));
    const config = resolveConfig(model, profile);
    if (!['true', 'false'].includes(config.WEBHOOK_ALLOW_PRIVATE_NETWORKS)) {
      problems.push(`profiles.${profile}.config.WEBHOOK_ALLOW_PRIVATE_NETWORKS ("${config.WEBHOOK_ALLOW_PRIVATE_NETWORKS}") must be "true" or "false"`);
    }
    if (p.secret.kind === 'external' && p.devDependencies) {
      problems.push(`profiles.${profile}.secret must be generated when profiles.${profile}.devDependencies is true (the Secret points at them)`);
    }
  }
  for (const dep of DEV_DEPENDENCIES) problems.push(...checkDevDependency(model.devDependencies[dep], `devDependencies.${dep}`));
  if (migrationJobName(model).length < model.name.length + 9) problems.push(`image ("${model.image.ref}") yields no usable Job name suffix`);
  assertNoProblems(problems);
}

/** The autoscaling bounds a profile runs with. */
export function resolveAutoscaling(model: DeploymentModel, profile: ProfileName, role: ServerRole): AutoscalingSpec {
  return model.profiles[profile].autoscaling[role] ?? model.workloads[role].autoscaling;
}
