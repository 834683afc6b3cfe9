/**
 * Values derived from the deployment model: what a container receives under a profile, the V8
 * heap cap and the Redis flags from the memory limits, object names, dev secret values. Both
 * renderers (the cdk8s charts and the compose generator) take these from here, never compute
 * their own, so Kubernetes and compose cannot disagree.
 */
import { createHash } from 'node:crypto';
import packageJson from '../../package.json';
import type {
  AutoscalingSpec,
  ConfigKey,
  DeploymentModel,
  DevDependencyName,
  DevDependencySpec,
  ImageReference,
  PortSpec,
  ProfileName,
  ResolvedEnv,
  ResourcesSpec,
  Role,
  RuntimeEnvKey,
  SecretKey,
  ServerRole,
  Settings,
} from './types';
import { ModelError } from './types';

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
// Memory
// ---------------------------------------------------------------------------------------------

/** Share of a container's memory limit given to the whole V8 heap (young and old generations). */
export const HEAP_SHARE_PERCENT = 75;
/**
 * The young generation's semi-space cap (`--max-semi-space-size`). V8's default, 16 MiB, lets the
 * young generation of a busy process take 48 MiB; with 8, bench:email's peak RSS was api 209–225
 * and worker 186–201 MB (224–252 and 206–213 MB with V8's default in the same evening's runs), for
 * a few more scavenges (README, Performance).
 */
export const SEMI_SPACE_MIB = 8;
/**
 * The most V8 adds on top of `--max-old-space-size` for the young generation: three semi-spaces
 * (measured on Node 20 with the default 16 MiB: `--max-old-space-size=100` gives a 148 MiB
 * heap_size_limit).
 */
export const YOUNG_GENERATION_MIB = 3 * SEMI_SPACE_MIB;
/** Below this the app cannot hold its own code and a batch of 100 emails. */
export const MIN_HEAP_MIB = 64;

/**
 * The V8 old-space cap (`--max-old-space-size`, MiB) of a Node process under a memory limit:
 * 75 % of the limit for the whole heap, minus the young generation. The other 25 % is for what
 * lives outside the heap: Buffers (request bodies up to BODY_LIMIT_BYTES, 10 MiB, several at
 * once; SMTP and HTTP socket buffers), native memory of pg, ioredis and the Prisma client, thread
 * stacks, and in compose the exec health check's short-lived second `node` (about 40 MiB RSS).
 * api 512 MiB → 360, worker 384 → 264, migrate 256 → 168. Without the cap V8 sizes its heap from
 * the machine, not the container, and grows into the OOM killer instead of collecting.
 */
export function heapLimitMiB(memoryLimitMiB: number): number {
  return Math.floor((memoryLimitMiB * HEAP_SHARE_PERCENT) / 100) - YOUNG_GENERATION_MIB;
}

/** The V8 flags of a Node process under a memory limit: the heap cap and the semi-space size. */
export function nodeOptions(memoryLimitMiB: number): string {
  return `--max-old-space-size=${heapLimitMiB(memoryLimitMiB)} --max-semi-space-size=${SEMI_SPACE_MIB}`;
}

/**
 * glibc malloc settings for every Node container; what lives outside the V8 heap is malloc's.
 * - `MALLOC_ARENA_MAX`: glibc gives each thread that allocates (V8's compile and GC threads,
 *   libuv's pool) an arena of its own, up to 8 per core, and memory freed in one arena serves
 *   only that arena; 2 keeps the main one and one for every other thread.
 * - `MALLOC_MMAP_THRESHOLD_`: a block of 128 KiB or more gets its own mapping, returned to the
 *   kernel when freed. glibc's default starts there but raises the threshold (up to 32 MiB) each
 *   time such a block is freed, after which large blocks (request bodies, query results) land
 *   in the arenas and stay resident; setting it fixes the threshold.
 * Measured on bench:email, back to back at load 4.5–6: peak RSS api 184 → 170 MB, worker
 * 139 → 125 MB; CPU an email within the round-to-round noise (worker 0.88 → 0.94 ms on delivery,
 * 1.41 → 1.45 ms at 200/s; api accept 0.40 → 0.41 ms a request).
 */
export const MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: String(128 * 1024) } as const;

/** The runtime variables of an app container: the V8 flags from its memory limit, and malloc's. */
export function runtimeEnv(resources: ResourcesSpec): Readonly<Record<RuntimeEnvKey, string>> {
  return { NODE_OPTIONS: nodeOptions(resources.memoryLimitMiB), ...MALLOC_ENV };
}

/** `--maxmemory` of a Redis stand-in, in MiB (Redis reads `mb` as 1024 × 1024 bytes). */
export function redisMaxMemoryMiB(dep: DevDependencySpec): number | undefined {
  return dep.redisServer ? Math.floor((dep.resources.memoryLimitMiB * dep.redisServer.maxMemoryPercent) / 100) : undefined;
}

/** A dev dependency's container args: the derived server flags first, then its own. */
export function dependencyArgs(dep: DevDependencySpec): readonly string[] | undefined {
  const server = dep.redisServer;
  if (!server) return dep.args;
  return ['redis-server', '--maxmemory', `${redisMaxMemoryMiB(dep)}mb`, '--maxmemory-policy', server.maxMemoryPolicy, ...(dep.args ?? [])];
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

/** Every setting of a profile: shared values overlaid with the profile's own. */
export function resolveConfig(model: DeploymentModel, profile: ProfileName): Settings {
  return { ...model.sharedConfig, ...model.profiles[profile].config };
}

/** The value of a setting a workload receives; `validateModel` guarantees there is one. */
export function settingValue(config: Settings, key: ConfigKey): string {
  const value = config[key];
  if (value === undefined) throw new ModelError([`sharedConfig.${key} is missing (a workload receives it)`]);
  return value;
}

/** The env a workload's containers receive under a profile: names sorted, so output is stable. */
export function resolveEnv(model: DeploymentModel, profile: ProfileName, role: Role): ResolvedEnv {
  const workload = model.workloads[role];
  const extra = role === 'api' ? model.profiles[profile].extraSecretKeys : [];
  return {
    secrets: [...new Set([...workload.env.secrets, ...extra])].sort(),
    config: [...workload.env.config].sort(),
    runtime: runtimeEnv(workload.resources),
  };
}

/** Secret keys that a profile may leave unset (the app treats them as absent). */
export function isOptionalSecret(key: SecretKey): boolean {
  // DKIM signing is off until the operator adds a key (and DKIM_DOMAIN, DKIM_SELECTOR).
  return key === 'BOOTSTRAP_API_KEY' || key === 'DKIM_PRIVATE_KEY';
}

/** How workloads address the dev dependencies: Kubernetes Service names or compose service names. */
export type HostNaming = (dependency: DevDependencyName) => string;

/**
 * Obviously-dev secret values, for the dev profile's generated Secret and compose defaults.
 * ENCRYPTION_KEY is base64 of the 32 ASCII bytes "dev-only-encryption-key-32-bytes"; the DKIM key
 * is the Ed25519 key whose seed is SHA-256("dev-only-dkim-key"), PEM on one line ("\n" escapes,
 * which the app accepts) so it fits an environment value.
 */
export function devSecretValues(model: DeploymentModel, host: HostNaming): Readonly<Partial<Record<SecretKey, string>>> {
  const { db, redis, mailpit } = model.devDependencies;
  const port = (dep: DevDependencySpec) => portNumber(dep.ports, dep.clientPort)!;
  return {
    DATABASE_URL: `postgresql://${db.env.POSTGRES_USER}:${db.secretEnv.POSTGRES_PASSWORD}@${host('db')}:${port(db)}/${db.env.POSTGRES_DB}`,
    REDIS_URL: `redis://${host('redis')}:${port(redis)}`,
    SMTP_URL: `smtp://${host('mailpit')}:${port(mailpit)}`,
    ENCRYPTION_KEY: Buffer.from('dev-only-encryption-key-32-bytes', 'ascii').toString('base64'),
    BOOTSTRAP_API_KEY: 'ee_dev_local_only_not_a_secret',
    DKIM_PRIVATE_KEY: devDkimKey(),
  };
}

/** PKCS#8 of an Ed25519 key is this fixed prefix and the 32-byte seed (RFC 8410). */
function devDkimKey(): string {
  const seed = createHash('sha256').update('dev-only-dkim-key').digest();
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return `-----BEGIN PRIVATE KEY-----\\n${der.toString('base64')}\\n-----END PRIVATE KEY-----`;
}

// ---------------------------------------------------------------------------------------------
// Names, ports, scaling
// ---------------------------------------------------------------------------------------------

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

/** The autoscaling bounds a profile runs with. */
export function resolveAutoscaling(model: DeploymentModel, profile: ProfileName, role: ServerRole): AutoscalingSpec {
  return model.profiles[profile].autoscaling[role] ?? model.workloads[role].autoscaling;
}
