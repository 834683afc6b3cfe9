/**
 * The model's invariants. Each check returns every problem it finds, each naming the field (its
 * path in the model) and the offending value; `validateModel` gathers all of them into one
 * ModelError. The charts, the constructs and the compose generator all refuse a model that fails.
 */
import { SECRET_KEYS, SETTING_KEYS } from '../../app/config';
import { checkBacklogScaling, checkBehavior, checkMonitoring } from '../monitoring/validate';
import { CONTRACT_QUEUES } from './easeemail';
import { devSecretValues, heapLimitMiB, migrationJobName, MIN_HEAP_MIB, portNumber, resolveConfig, resolveEnv } from './derive';
import type { AutoscalingSpec, ConfigKey, DeploymentModel, DevDependencySpec, EnvSpec, PortSpec, ProbesSpec, ProfileName, ResourcesSpec, ServerWorkloadSpec } from './types';
import { assertNoProblems, DEV_DEPENDENCIES, PROFILES, ROLES, SERVER_ROLES } from './types';

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

/** An app container's limits, plus room for a usable V8 heap under the derived cap. */
export function checkAppResources(r: ResourcesSpec, path: string): string[] {
  const problems = checkResources(r, path);
  const heap = heapLimitMiB(r.memoryLimitMiB);
  if (Number.isInteger(r.memoryLimitMiB) && heap < MIN_HEAP_MIB) {
    problems.push(`${path}.memoryLimitMiB (${r.memoryLimitMiB}) leaves a V8 heap of ${heap} MiB (heapLimitMiB); the app needs at least ${MIN_HEAP_MIB}`);
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
  problems.push(...checkBehavior(a.behavior, `${path}.behavior`));
  if (a.backlog) problems.push(...checkBacklogScaling(a.backlog, `${path}.backlog`));
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
    ...checkAppResources(w.resources, `${path}.resources`),
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
  if (w.metrics && portNumber(w.ports, w.metrics.port) === undefined) problems.push(`${path}.metrics.port ("${w.metrics.port}") is not a port of the container`);
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
  problems.push(...checkRedisServer(d, path));
  return problems;
}

/** The Redis that holds the queues: capped inside its container, and never evicting a job key. */
function checkRedisServer(d: DevDependencySpec, path: string): string[] {
  const server = d.redisServer;
  if (!server) return d.provides === 'redis' ? [`${path}.redisServer is required: the queues need --maxmemory with --maxmemory-policy noeviction`] : [];
  const problems: string[] = [];
  if (d.provides !== 'redis') problems.push(`${path}.redisServer is only for the Redis stand-in (this one provides ${d.provides})`);
  if (server.maxMemoryPolicy !== 'noeviction') {
    problems.push(`${path}.redisServer.maxMemoryPolicy ("${server.maxMemoryPolicy}") must be "noeviction": BullMQ loses an evicted job`);
  }
  const percent = server.maxMemoryPercent;
  if (!(Number.isInteger(percent) && percent >= 10 && percent <= 90)) {
    problems.push(`${path}.redisServer.maxMemoryPercent (${percent}) must be an integer in 10..90 (the rest is fragmentation and snapshot headroom)`);
  }
  return problems;
}

const SETTINGS: ReadonlySet<string> = new Set(SETTING_KEYS);
const SECRETS: ReadonlySet<string> = new Set(SECRET_KEYS);

/** Why a name is not a setting: a secret in the wrong place, or a name the app would silently ignore. */
function notASetting(key: string, path: string): string[] {
  if (SETTINGS.has(key)) return [];
  if (SECRETS.has(key)) return [`${path} ("${key}") is a secret in app/config.ts SECRET_KEYS: it belongs in env.secrets, not in a ConfigMap`];
  return [`${path} ("${key}") is not a key app/config.ts reads (the app would silently ignore it)`];
}

function notASecret(key: string, path: string): string[] {
  return SECRETS.has(key) ? [] : [`${path} ("${key}") is not a secret key of app/config.ts (SECRET_KEYS)`];
}

/** Store URLs go exactly to the workloads that have the store as a peer (its egress follows `peers`). */
const STORE_URLS = [
  { key: 'DATABASE_URL', peer: 'postgres' },
  { key: 'REDIS_URL', peer: 'redis' },
] as const;

/** Names a workload receives: keys the app reads, settings with a value, store URLs matching its peers. */
export function checkWorkloadEnv(env: EnvSpec, peers: readonly string[], sharedConfig: DeploymentModel['sharedConfig'], path: string): string[] {
  const problems: string[] = [];
  env.secrets.forEach((key, i) => problems.push(...notASecret(key, `${path}.env.secrets[${i}]`)));
  env.config.forEach((key, i) => {
    const problem = notASetting(key, `${path}.env.config[${i}]`);
    problems.push(...problem);
    if (problem.length === 0 && sharedConfig[key] === undefined) problems.push(`${path}.env.config[${i}] ("${key}") has no value in sharedConfig`);
  });
  for (const { key, peer } of STORE_URLS) {
    const given = env.secrets.includes(key);
    if (given && !peers.includes(peer)) problems.push(`${path}.env.secrets has ${key} but ${path}.peers has no "${peer}" (a credential it cannot use)`);
    if (!given && peers.includes(peer)) problems.push(`${path}.peers has "${peer}" but ${path}.env.secrets has no ${key}`);
  }
  return problems;
}

/** Checks every invariant of the model; throws one ModelError that lists all violations. */
export function validateModel(model: DeploymentModel): void {
  const problems: string[] = [];
  if (!DNS_LABEL.test(model.name)) problems.push(`name ("${model.name}") must be a DNS label`);
  if (!isPositiveInt(model.appUser)) problems.push(`appUser (${model.appUser}) must be a non-root uid`);
  for (const key of Object.keys(model.sharedConfig)) problems.push(...notASetting(key, `sharedConfig.${key}`));
  for (const role of SERVER_ROLES) problems.push(...checkServerWorkload(model.workloads[role], `workloads.${role}`));
  for (const role of ROLES) {
    const w = model.workloads[role];
    problems.push(...checkWorkloadEnv(w.env, w.peers, model.sharedConfig, `workloads.${role}`));
  }
  const migrate = model.workloads.migrate;
  problems.push(...checkAppResources(migrate.resources, 'workloads.migrate.resources'));
  if (!isPositiveInt(migrate.job.activeDeadlineSeconds)) problems.push(`workloads.migrate.job.activeDeadlineSeconds (${migrate.job.activeDeadlineSeconds}) must be a positive integer`);
  if (!(Number.isInteger(migrate.job.backoffLimit) && migrate.job.backoffLimit >= 0)) problems.push(`workloads.migrate.job.backoffLimit (${migrate.job.backoffLimit}) must be a non-negative integer`);
  for (const profile of PROFILES) problems.push(...checkProfile(model, profile));
  for (const dep of DEV_DEPENDENCIES) problems.push(...checkDevDependency(model.devDependencies[dep], `devDependencies.${dep}`));
  if (migrationJobName(model).length < model.name.length + 9) problems.push(`image ("${model.image.ref}") yields no usable Job name suffix`);
  problems.push(...checkMonitoring(model, CONTRACT_QUEUES));
  assertNoProblems(problems);
}

function checkProfile(model: DeploymentModel, profile: ProfileName): string[] {
  const problems: string[] = [];
  const p = model.profiles[profile];
  for (const key of Object.keys(p.config)) {
    const path = `profiles.${profile}.config.${key}`;
    const problem = notASetting(key, path);
    problems.push(...problem);
    if (problem.length === 0 && !(key in model.sharedConfig)) problems.push(`${path} overrides nothing: set ${key} in sharedConfig first (the ConfigMap's keys are the same in every profile)`);
  }
  p.extraSecretKeys.forEach((key, i) => problems.push(...notASecret(key, `profiles.${profile}.extraSecretKeys[${i}]`)));
  for (const role of SERVER_ROLES) {
    const a = p.autoscaling[role];
    if (a) problems.push(...checkAutoscaling(a, `profiles.${profile}.autoscaling.${role}`));
  }
  for (const role of SERVER_ROLES) problems.push(...checkServerWorkloadConfig(model, profile, model.workloads[role], `workloads.${role}`));
  const config = resolveConfig(model, profile);
  if (!['true', 'false'].includes(config.WEBHOOK_ALLOW_PRIVATE_NETWORKS ?? '')) {
    problems.push(`profiles.${profile}.config.WEBHOOK_ALLOW_PRIVATE_NETWORKS ("${config.WEBHOOK_ALLOW_PRIVATE_NETWORKS}") must be "true" or "false"`);
  }
  if (p.secret.kind === 'external' && p.devDependencies) {
    problems.push(`profiles.${profile}.secret must be generated when profiles.${profile}.devDependencies is true (the Secret points at them)`);
  }
  if (p.secret.kind === 'generated') {
    const values = devSecretValues(model, (dep) => dep);
    for (const role of ROLES) {
      for (const key of resolveEnv(model, profile, role).secrets) {
        if (SECRETS.has(key) && values[key] === undefined) problems.push(`profiles.${profile}.secret is generated but has no dev value for ${key} (workloads.${role} receives it)`);
      }
    }
  }
  return problems;
}
