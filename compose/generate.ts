/**
 * The compose file, rendered from the same deployment model as the Kubernetes charts: same image,
 * arguments, environment names, memory limits and health endpoints. Uses only keys that both the
 * compose specification and docker-compose 1.29 accept (no top-level `name`, no
 * `depends_on.*.required`, no healthcheck `start_interval`).
 *
 * Written by `npm run synth` (charts/synth.ts) to compose/compose.yaml.
 */
import type { DeploymentModel, DevDependencyName, DevDependencySpec, Peer, Role, SecretKey, ServerWorkloadSpec } from '../charts/model';
import { DEV_DEPENDENCIES, dependencyArgs, devSecretValues, resolveConfig, resolveEnv, settingValue, validateModel } from '../charts/model';

/** The profile whose settings and secrets compose mirrors: compose is a local, dev stack. */
export const COMPOSE_PROFILE = 'dev';

export type DependencyCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export type ComposeHealthcheck =
  | { readonly test: readonly string[]; readonly interval: string; readonly timeout: string; readonly retries: number; readonly start_period: string }
  | { readonly disable: true };

export interface ComposeService {
  readonly image: string;
  /** Only started with `--profile <name>`. */
  readonly profiles?: readonly string[];
  readonly build?: { readonly context: string; readonly dockerfile: string };
  readonly command?: readonly string[];
  readonly user?: string;
  readonly environment?: Readonly<Record<string, string>>;
  readonly ports?: readonly string[];
  readonly volumes?: readonly string[];
  readonly depends_on?: Readonly<Record<string, { readonly condition: DependencyCondition }>>;
  readonly healthcheck?: ComposeHealthcheck;
  readonly networks: readonly string[];
  readonly read_only?: boolean;
  readonly tmpfs?: readonly string[];
  readonly cap_drop?: readonly string[];
  readonly security_opt?: readonly string[];
  readonly stop_grace_period?: string;
  readonly deploy: { readonly resources: { readonly limits: { readonly memory: string } } };
}

export interface ComposeFile {
  readonly services: Readonly<Record<string, ComposeService>>;
  readonly networks: Readonly<Record<string, { readonly internal?: boolean }>>;
  readonly volumes: Readonly<Record<string, Record<string, never>>>;
}

/** Data stores and SMTP only; nothing on it reaches outside. */
export const INTERNAL_NETWORK = 'internal';
/** Published ports and outbound webhooks. */
export const PUBLIC_NETWORK = 'public';

/** Where the app image is built: the repository root, seen from compose/. */
const BUILD = { context: '..', dockerfile: 'Dockerfile' } as const;

/** Host-side variable that overrides a secret's dev default, e.g. EASEEMAIL_SMTP_URL. */
export function secretOverrideVariable(key: string): string {
  return `EASEEMAIL_${key}`;
}

const seconds = (n: number) => `${n}s`;
const memory = (mib: number) => `${mib}M`;

/** `$` would start an interpolation: literal values double it. */
function literal(value: string): string {
  return value.replace(/\$/g, '$$$$');
}

/** `${VAR:-default}`; docker-compose 1.29 cannot nest or escape inside the default. */
function withDefault(variable: string, value: string): string {
  if (/[$}]/.test(value)) throw new Error(`compose default for ${variable} must not contain "$" or "}"`);
  return `\${${variable}:-${value}}`;
}

/** Host ports bind to loopback: the dev stack and its dev credentials stay off the network. */
function publish(variable: string, defaultPort: number, containerPort: number): string {
  return `127.0.0.1:${withDefault(variable, String(defaultPort))}:${containerPort}`;
}

function dependencyFor(model: DeploymentModel, peer: Peer): DevDependencySpec | undefined {
  return DEV_DEPENDENCIES.map((d) => model.devDependencies[d]).find((d) => d.provides === peer);
}

/** Healthy when the stand-in has an exec check compose can run; started otherwise (the image's own HEALTHCHECK). */
function readyCondition(dep: DevDependencySpec): DependencyCondition {
  return 'exec' in dep.health ? 'service_healthy' : 'service_started';
}

function healthcheck(model: DeploymentModel, command: readonly string[]): ComposeHealthcheck {
  const t = model.composeHealthcheck;
  return {
    test: ['CMD', ...command],
    interval: seconds(t.intervalSeconds),
    timeout: seconds(t.timeoutSeconds),
    retries: t.retries,
    start_period: seconds(t.startPeriodSeconds),
  };
}

/** The app's environment under compose: settings and runtime values literally, secrets overridable from the host. */
function appEnvironment(model: DeploymentModel, role: Role): Record<string, string> {
  const env = resolveEnv(model, COMPOSE_PROFILE, role);
  const config = resolveConfig(model, COMPOSE_PROFILE);
  const secrets = devSecretValues(model, (dep: DevDependencyName) => dep);
  const secretValue = (key: SecretKey) => {
    const value = secrets[key];
    if (value === undefined) throw new Error(`no dev value for ${key}, which workloads.${role} receives`);
    return value;
  };
  return sortedRecord([
    ...env.config.map((key): [string, string] => [key, literal(settingValue(config, key))]),
    ...env.secrets.map((key): [string, string] => [key, withDefault(secretOverrideVariable(key), secretValue(key))]),
    ...Object.entries(env.runtime).map(([key, value]): [string, string] => [key, literal(value)]),
  ]);
}

function sortedRecord(entries: [string, string][]): Record<string, string> {
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** What the app's services share: one image built once, the hardened runtime of the pods. */
function appService(model: DeploymentModel, role: Role) {
  return {
    image: model.image.ref,
    build: BUILD,
    command: [...model.workloads[role].args],
    user: `${model.appUser}:${model.appUser}`,
    environment: appEnvironment(model, role),
  };
}

function hardening() {
  return { read_only: true, tmpfs: ['/tmp'], cap_drop: ['ALL'], security_opt: ['no-new-privileges:true'] };
}

function dependsOn(model: DeploymentModel, peers: readonly Peer[], migrated: boolean): Record<string, { condition: DependencyCondition }> {
  const out: Record<string, { condition: DependencyCondition }> = {};
  if (migrated) out.migrate = { condition: 'service_completed_successfully' };
  for (const peer of peers) {
    const dep = dependencyFor(model, peer);
    if (dep) out[dep.name] = { condition: readyCondition(dep) };
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function networksFor(peers: readonly Peer[], published: boolean): string[] {
  const internal = peers.some((p) => p !== 'webhooks');
  const outside = published || peers.includes('webhooks');
  return [...(internal ? [INTERNAL_NETWORK] : []), ...(outside ? [PUBLIC_NETWORK] : [])];
}

function serverService(model: DeploymentModel, w: ServerWorkloadSpec): ComposeService {
  const publishSpec = w.composePublish;
  const port = publishSpec ? w.ports.find((p) => p.name === publishSpec.port)!.containerPort : undefined;
  return {
    ...appService(model, w.role),
    ports: publishSpec ? [publish(publishSpec.hostPortVariable, publishSpec.defaultHostPort, port!)] : undefined,
    depends_on: dependsOn(model, w.peers, true),
    healthcheck: healthcheck(model, w.healthcheckCommand),
    networks: networksFor(w.peers, publishSpec !== undefined),
    ...hardening(),
    stop_grace_period: seconds(w.terminationGracePeriodSeconds),
    deploy: { resources: { limits: { memory: memory(w.resources.memoryLimitMiB) } } },
  };
}

function dependencyService(model: DeploymentModel, dep: DevDependencySpec): ComposeService {
  const ui = dep.uiPort;
  const uiPort = ui ? dep.ports.find((p) => p.name === ui.port)!.containerPort : undefined;
  const args = dependencyArgs(dep);
  const environment = Object.entries({ ...dep.env, ...dep.secretEnv }).map(([k, v]): [string, string] => [k, literal(v)]);
  return {
    image: dep.image,
    command: args ? [...args] : undefined,
    environment: environment.length ? sortedRecord(environment) : undefined,
    ports: ui ? [publish(ui.hostPortVariable, ui.defaultHostPort, uiPort!)] : undefined,
    volumes: dep.composeVolumePath ? [`${dep.name}-data:${dep.composeVolumePath}`] : undefined,
    healthcheck: 'exec' in dep.health ? healthcheck(model, dep.health.exec) : undefined,
    networks: [INTERNAL_NETWORK, ...(ui ? [PUBLIC_NETWORK] : [])],
    deploy: { resources: { limits: { memory: memory(dep.resources.memoryLimitMiB) } } },
  };
}

/** Where compose's Prometheus reads its configuration and rules (generated beside this file). */
export const COMPOSE_PROMETHEUS_MOUNTS = [
  './prometheus.yaml:/etc/prometheus/prometheus.yml:ro',
  '../k8s/addons/prometheus/easeemail.rules.yaml:/etc/prometheus/rules/easeemail.rules.yaml:ro',
] as const;

/**
 * The `monitoring` profile: Prometheus scraping every api and worker replica with the shipped
 * rules (compose/prometheus.yaml). On the public network only: it reaches the app's metrics
 * ports, never the data stores. No healthcheck: the image has no HTTP client to run one.
 */
function prometheusService(model: DeploymentModel): ComposeService {
  const p = model.monitoring.compose;
  return {
    image: p.image,
    profiles: ['monitoring'],
    volumes: [...COMPOSE_PROMETHEUS_MOUNTS],
    ports: [publish(p.uiPort.hostPortVariable, p.uiPort.defaultHostPort, 9090)],
    depends_on: { api: { condition: 'service_started' }, worker: { condition: 'service_started' } },
    networks: [PUBLIC_NETWORK],
    deploy: { resources: { limits: { memory: memory(p.memoryLimitMiB) } } },
  };
}

/** Drops undefined keys, which YAML would otherwise print as null. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The compose file for the model; throws a ModelError when the model is invalid. */
export function renderCompose(model: DeploymentModel): ComposeFile {
  validateModel(model);
  const services: Record<string, ComposeService> = {};
  for (const name of DEV_DEPENDENCIES) services[name] = compact(dependencyService(model, model.devDependencies[name]));
  const migrate = model.workloads.migrate;
  services.migrate = compact({
    ...appService(model, 'migrate'),
    depends_on: dependsOn(model, migrate.peers, false),
    // One-shot: the image's HEALTHCHECK probes a server this role never starts.
    healthcheck: { disable: true },
    networks: networksFor(migrate.peers, false),
    ...hardening(),
    deploy: { resources: { limits: { memory: memory(migrate.resources.memoryLimitMiB) } } },
  });
  services.api = compact(serverService(model, model.workloads.api));
  services.worker = compact(serverService(model, model.workloads.worker));
  services.inbound = compact(serverService(model, model.workloads.inbound));
  services.prometheus = prometheusService(model);

  const volumes: Record<string, Record<string, never>> = {};
  for (const name of DEV_DEPENDENCIES) {
    if (model.devDependencies[name].composeVolumePath) volumes[`${name}-data`] = {};
  }
  return {
    services,
    networks: { [INTERNAL_NETWORK]: { internal: true }, [PUBLIC_NETWORK]: {} },
    volumes,
  };
}
