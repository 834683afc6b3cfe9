/**
 * The deployment files and the app agree on configuration: every container's environment, as
 * Kubernetes (both profiles) and compose resolve it from the committed files, loads through the
 * app's real parser (`loadConfig` of app/config.ts) with what that role requires, and carries no
 * name the app would silently ignore. migrate gets no Redis, and `easeemail migrate` really runs
 * with exactly its compose environment (PostgreSQL swapped for a test schema).
 */
import { ConfigError, ENV_KEYS, loadConfig, SECRET_KEYS, secretFileKey, type Env, type Requirement } from '../../app/config';
import { PROFILES, RUNTIME_ENV_KEYS, type ProfileName } from '../../charts/model';
import { dropSchema, schemaUrl, uniqueName } from '../support/isolation';
import { runCli } from '../support/processes';
import { composeService, containersOf, find, loadCompose, loadProfile, ofKind, workloads, type Container, type K8sObject } from './support/manifests';

/** What each role's command asks `loadConfig` for (app/main.ts): migrate needs no Redis. */
const REQUIRES: Record<string, readonly Requirement[]> = {
  api: ['database', 'redis'],
  worker: ['database', 'redis'],
  inbound: ['database', 'redis'],
  migrate: ['database'],
  'migrate-wait': ['database'],
};

/** Names a container may carry: keys the parser reads, their `_FILE` variants, and runtime variables. */
const KNOWN_NAMES = new Set<string>([...ENV_KEYS, ...SECRET_KEYS.map(secretFileKey), ...RUNTIME_ENV_KEYS]);

/** A Kubernetes container's env with every reference resolved against the profile's objects. */
function kubernetesEnv(container: Container, configMaps: K8sObject[], secret: Record<string, string>): Env {
  const env: Env = {};
  for (const entry of container.env ?? []) {
    if ('value' in entry) env[entry.name] = entry.value;
    else if (entry.valueFrom?.configMapKeyRef) {
      const ref = entry.valueFrom.configMapKeyRef;
      const data = configMaps.find((c) => c.metadata.name === ref.name)?.data ?? {};
      if (!(ref.key in data)) throw new Error(`${container.name}: ${entry.name} refers to ConfigMap ${ref.name} key ${ref.key}, which does not exist`);
      env[entry.name] = data[ref.key];
    } else if (entry.valueFrom?.secretKeyRef) {
      const ref = entry.valueFrom.secretKeyRef;
      if (ref.key in secret) env[entry.name] = secret[ref.key];
      else if (!ref.optional) throw new Error(`${container.name}: ${entry.name} refers to Secret key ${ref.key}, which the Secret lacks`);
    } else throw new Error(`${container.name}: ${entry.name} has a source this test does not resolve`);
  }
  return env;
}

/** compose's own resolution with no host overrides: `${VAR:-default}` → default, `$$` → `$`. */
function composeEnv(environment: Readonly<Record<string, string>>): Env {
  return Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, v.replace(/^\$\{[A-Z0-9_]+:-(.*)\}$/, '$1').replace(/\$\$/g, '$')]));
}

/**
 * The Secret's values: dev generates it; prod's comes from the operator, with the same keys the
 * README's command creates, so the dev values stand in for it.
 */
function secretValues(profile: ProfileName): Record<string, string> {
  const values = { ...find(loadProfile('dev'), 'Secret', 'easeemail').stringData };
  // Optional in prod: the README's command leaves it out until the operator turns DKIM on.
  if (profile === 'prod') delete values.DKIM_PRIVATE_KEY;
  return values;
}

interface ResolvedContainer {
  readonly where: string;
  readonly role: string;
  readonly env: Env;
}

function kubernetesContainers(profile: ProfileName): ResolvedContainer[] {
  const objects = loadProfile(profile);
  const appWorkloads = workloads(objects).filter((w) => ['api', 'worker', 'inbound', 'migrate'].includes(w.spec.template.metadata?.labels?.['app.kubernetes.io/component']));
  return appWorkloads.flatMap((w) => {
    const { init, main } = containersOf(w);
    return [...init, ...main].map((c) => ({ where: `k8s/${profile} ${w.kind} ${w.metadata.name} container ${c.name}`, role: c.name, env: kubernetesEnv(c, ofKind(objects, 'ConfigMap'), secretValues(profile)) }));
  });
}

function composeContainers(): ResolvedContainer[] {
  const compose = loadCompose();
  return ['api', 'worker', 'inbound', 'migrate'].map((role) => ({ where: `compose service ${role}`, role, env: composeEnv(composeService(compose, role).environment ?? {}) }));
}

const containers = [...PROFILES.flatMap(kubernetesContainers), ...composeContainers()];

describe('every container env loads through the real config parser', () => {
  it('covers api, worker, inbound, migrate and the migrate-wait init containers on both runtimes', () => {
    const roles = (prefix: string) => containers.filter((c) => c.where.startsWith(prefix)).map((c) => c.role).sort();
    for (const profile of PROFILES) expect(roles(`k8s/${profile}`)).toEqual(['api', 'inbound', 'migrate', 'migrate-wait', 'migrate-wait', 'migrate-wait', 'worker']);
    expect(roles('compose')).toEqual(['api', 'inbound', 'migrate', 'worker']);
  });

  describe.each(containers.map((c) => [c.where, c] as const))('%s', (_where, container) => {
    it('carries only names the app or the runtime reads', () => {
      expect(Object.keys(container.env).filter((name) => !KNOWN_NAMES.has(name))).toEqual([]);
    });

    it(`parses with what the role requires`, () => {
      const requires = REQUIRES[container.role];
      expect(requires).toBeDefined();
      const config = loadConfig(container.env, requires);
      expect(config.databaseUrl).toMatch(/^postgresql:\/\//);
      if (container.role === 'api') expect(config.port).toBe(8000);
      if (container.role === 'worker') expect(config.workerHealthPort).toBe(8001);
      if (container.role === 'inbound') expect(config.inbound).toMatchObject({ port: 2525, healthPort: 8002 });
      if (container.role === 'inbound') expect(config.bounceDomain).toMatch(/^bounces\./);
      if (requires.includes('redis')) expect(config.redisUrl).toMatch(/^redis:\/\//);
    });

    if (REQUIRES[container.role]?.includes('redis')) return;
    it('gets no Redis: asking the parser for Redis fails, naming REDIS_URL', () => {
      expect(Object.keys(container.env).filter((name) => name.startsWith('REDIS_'))).toEqual([]);
      expect(() => loadConfig(container.env, ['database', 'redis'])).toThrow(ConfigError);
      expect(() => loadConfig(container.env, ['database', 'redis'])).toThrow(/REDIS_URL: required/);
    });
  });
});

describe('easeemail migrate with exactly its compose environment', () => {
  const schema = uniqueName('migrate_env');
  afterAll(() => dropSchema(schema));

  it('applies the migrations without any Redis setting', async () => {
    const env = composeContainers().find((c) => c.role === 'migrate')!.env;
    expect(env.REDIS_URL).toBeUndefined();
    const run = await runCli(['migrate'], { ...env, DATABASE_URL: schemaUrl(schema) });
    expect({ code: run.code, output: run.output.slice(-2000) }).toEqual({ code: 0, output: expect.stringMatching(/migrations applied/) });
  });
});
