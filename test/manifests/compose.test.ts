/**
 * compose/compose.yaml: valid against the compose-spec JSON schema (shipped by dclint) and within
 * the subset of keys Compose v1 (1.29) understands. That the Compose 1.29 binary itself accepts it
 * is checked in the container suite (test/container/compose-config.spec.ts), which has the binary.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import type { ComposeService } from '../../compose/generate';
import { COMPOSE_PATH, composeBytes, composeService, loadCompose, REPO_ROOT } from './support/manifests';

/** The compose-spec schema dclint validates with (not in its package exports, so located via package.json). */
const COMPOSE_SCHEMA = join(dirname(require.resolve('dclint/package.json', { paths: [REPO_ROOT] })), 'schemas', 'compose.schema.json');
const APP_SERVICES = ['migrate', 'api', 'worker', 'inbound'];
const STORES = ['db', 'redis', 'mailpit'];

let validator: ValidateFunction | undefined;

/** Ajv's default class speaks draft-07, the schema's dialect (declared under its https URL, which Ajv does not alias). */
function composeValidator(): ValidateFunction {
  if (!validator) {
    const { $schema, ...schema } = JSON.parse(readFileSync(COMPOSE_SCHEMA, 'utf8'));
    if (!/draft-07/.test($schema)) throw new Error(`compose schema dialect changed: ${$schema}`);
    validator = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }
  return validator;
}

describe('compose file', () => {
  const compose = loadCompose();
  const text = readFileSync(COMPOSE_PATH, 'utf8');

  it('validates against the compose-spec JSON schema', () => {
    const validate = composeValidator();
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('the schema check has teeth: an unknown key and a bad type fail', () => {
    const validate = composeValidator();
    const broken = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    broken.services.api.restart_policy = 'always';
    broken.services.worker.healthcheck = { test: ['CMD', 'true'], retries: 'many' };
    expect(validate(broken)).toBe(false);
    expect(JSON.stringify(validate.errors)).toMatch(/restart_policy/);
  });

  it('uses only keys Compose v1 (1.29) understands', () => {
    expect(Object.keys(compose).sort()).toEqual(['networks', 'services', 'volumes']); // no top-level name
    expect(text).not.toMatch(/start_interval|required:|restart:|env_file|container_name/);
    for (const [name, s] of Object.entries(compose.services)) {
      for (const dep of Object.values(s.depends_on ?? {})) expect({ name, keys: Object.keys(dep) }).toEqual({ name, keys: ['condition'] });
    }
  });

  it('has the services of the design, the app image built once from the repository', () => {
    // prometheus: only with --profile monitoring (test/manifests/monitoring.test.ts).
    expect(Object.keys(compose.services)).toEqual([...STORES, ...APP_SERVICES, 'prometheus']);
    const images = new Set(APP_SERVICES.map((n) => composeService(compose, n).image));
    expect([...images]).toEqual(['easeemail:0.1.0']);
    for (const name of APP_SERVICES) {
      expect(composeService(compose, name).build).toEqual({ context: '..', dockerfile: 'Dockerfile' });
    }
    expect(composeService(compose, 'db').image).toBe('postgres:15-alpine');
    expect(composeService(compose, 'redis').image).toBe('redis:7-alpine');
    expect(composeService(compose, 'mailpit').image).toBe('axllent/mailpit');
  });

  it('orders startup: stores healthy → migrate completed → api and worker', () => {
    const dependsOn = (name: string) => composeService(compose, name).depends_on;
    expect(dependsOn('migrate')).toEqual({ db: { condition: 'service_healthy' } }); // migrate needs no Redis
    for (const name of ['api', 'worker']) {
      expect(dependsOn(name)).toMatchObject({ migrate: { condition: 'service_completed_successfully' }, db: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    }
    expect(dependsOn('worker')).toMatchObject({ mailpit: { condition: 'service_started' } });
    expect(composeService(compose, 'migrate').healthcheck).toEqual({ disable: true });
  });

  it('keeps data stores internal: no host ports, only the internal network', () => {
    expect(compose.networks).toEqual({ internal: { internal: true }, public: {} });
    for (const name of ['db', 'redis']) {
      expect(composeService(compose, name).ports).toBeUndefined();
      expect(composeService(compose, name).networks).toEqual(['internal']);
    }
    expect(composeService(compose, 'migrate').networks).toEqual(['internal']);
    // The API is published; the worker reaches webhook receivers on the public network and mailpit on the internal one.
    for (const name of ['api', 'worker', 'mailpit']) expect(composeService(compose, name).networks).toEqual(['internal', 'public']);
  });

  it('publishes host ports through variables with defaults, on loopback', () => {
    expect(composeService(compose, 'api').ports).toEqual(['127.0.0.1:${EASEEMAIL_API_PORT:-8000}:8000']);
    expect(composeService(compose, 'mailpit').ports).toEqual(['127.0.0.1:${MAILPIT_UI_PORT:-8025}:8025']);
    expect(composeService(compose, 'worker').ports).toBeUndefined();
  });

  it('health checks: exec form, no whitespace in any argument (podman splits them), sensible timing', () => {
    for (const [name, s] of Object.entries(compose.services) as [string, ComposeService][]) {
      const hc = s.healthcheck;
      if (!hc || 'disable' in hc) continue;
      expect({ name, cmd: hc.test[0], spaced: hc.test.filter((a) => /\s/.test(a)) }).toEqual({ name, cmd: 'CMD', spaced: [] });
      expect(hc.retries).toBeGreaterThanOrEqual(3);
      expect(hc.start_period).toMatch(/^\d+s$/);
    }
    expect(composeService(compose, 'api').healthcheck).toMatchObject({ test: ['CMD', 'easeemail', 'healthcheck', 'api'] });
    expect(composeService(compose, 'worker').healthcheck).toMatchObject({ test: ['CMD', 'easeemail', 'healthcheck', 'worker'] });
  });

  it('limits memory on every service and hardens the app services like their pods', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect({ name, bytes: composeBytes(s.deploy.resources.limits.memory) > 0 }).toEqual({ name, bytes: true });
    }
    for (const name of APP_SERVICES) {
      expect(composeService(compose, name)).toMatchObject({
        user: '1000:1000',
        read_only: true,
        tmpfs: ['/tmp'],
        cap_drop: ['ALL'],
        security_opt: ['no-new-privileges:true'],
      });
    }
  });

  it('dev values: obviously dev, overridable from the host, settings as the contract says', () => {
    const api = composeService(compose, 'api').environment!;
    expect(api).toMatchObject({
      DATABASE_URL: '${EASEEMAIL_DATABASE_URL:-postgresql://easeemail:easeemail@db:5432/easeemail}',
      REDIS_URL: '${EASEEMAIL_REDIS_URL:-redis://redis:6379}',
      SMTP_URL: '${EASEEMAIL_SMTP_URL:-smtp://mailpit:1025}',
      BOOTSTRAP_API_KEY: expect.stringMatching(/^\$\{EASEEMAIL_BOOTSTRAP_API_KEY:-ee_dev_local_only_[A-Za-z0-9_-]+\}$/),
      ENCRYPTION_KEY: expect.stringMatching(/^\$\{EASEEMAIL_ENCRYPTION_KEY:-[A-Za-z0-9+/=]+\}$/),
      RUN_MIGRATIONS: 'false',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    });
    const key = /:-([^}]+)\}$/.exec(api.ENCRYPTION_KEY)![1];
    expect(Buffer.from(key, 'base64').toString('ascii')).toMatch(/^dev-only-/);
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
  });
});
