/**
 * Smoke run of the synthesized Kubernetes Deployments (k8s/dev) with `podman kube play` through
 * the container lab's kube-play wrapper. podman is not a cluster, so the test plays a copy of the
 * manifests adapted to the lab, and says exactly how:
 *
 * - kept as synthesized: the api and worker Deployments (args, init container `migrate --wait`,
 *   env from the ConfigMap and the Secret, securityContext, resources, the /tmp emptyDir);
 * - changed: the image name (the local build's full name), object names (a unique suffix),
 *   the Secret's data-store hosts (compose's db/redis/mailpit instead of the dev Services, which
 *   podman does not run) and a per-run database schema, host ports (free ones, so parallel runs
 *   and other services do not collide), the pods' restartPolicy (OnFailure: podman 4.3 would
 *   restart the finished init container under Always), and the httpGet liveness probes, which podman would run
 *   with curl that the image does not carry: they become exec probes of the same endpoint
 *   (`easeemail healthcheck <role>`);
 * - not played: Services, the migration Job, NetworkPolicies, HPAs and PDBs (podman skips them);
 *   the Job's work is done by running `migrate` once, as the Job would.
 *
 * Readiness (podman ignores readinessProbe) is checked by the test itself on the probe's own path
 * and port, from the host through the published port and inside the pod.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  ComposeProject,
  IMAGE,
  IMAGE_FULL_NAME,
  ROOT,
  eventually,
  POLL,
  freePort,
  http,
  mustRun,
  podman,
  report,
  run,
  runToCompletion,
  uniqueName,
} from './support';

const KUBE_PLAY = path.resolve(ROOT, process.env.CONTAINER_LAB ?? '../shared/container-lab', 'kube-play');
const ROLES = ['api', 'worker'] as const;
type Role = (typeof ROLES)[number];

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects are walked as plain data */
type K8sObject = Record<string, any>;

let project: ComposeProject;
let workDir = '';
let manifestFile = '';
const id = uniqueName('k');
const schema = `kube_${id}`;
const hostPorts: Record<Role, number> = { api: 0, worker: 0 };
let deployments: Record<Role, K8sObject>;
let configMap: K8sObject;

function load(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(path.join(ROOT, file), 'utf8')).map((d) => d.toJS() as K8sObject).filter(Boolean);
}

/** Every container spec of a pod template, init containers included. */
function containersOf(deployment: K8sObject): K8sObject[] {
  const spec = deployment.spec.template.spec;
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** The lab-adapted copy of the dev manifests (see the file comment for every change). */
function adaptManifests(): string {
  const app = load('k8s/dev/easeemail.k8s.yaml');
  const devSecret = load('k8s/dev/dev-dependencies.k8s.yaml').find((d) => d.kind === 'Secret' && d.metadata.name === 'easeemail');
  if (!devSecret) throw new Error('k8s/dev/dev-dependencies.k8s.yaml has no Secret "easeemail"');
  const cm = app.find((d) => d.kind === 'ConfigMap');
  if (!cm) throw new Error('k8s/dev/easeemail.k8s.yaml has no ConfigMap');
  const names = { secret: devSecret.metadata.name as string, configMap: cm.metadata.name as string };

  const secret = structuredClone(devSecret);
  secret.metadata.name = `${names.secret}-${id}`;
  const hosts: Record<string, string> = { 'easeemail-db': 'db', 'easeemail-redis': 'redis', 'easeemail-mailpit': 'mailpit' };
  for (const [key, value] of Object.entries(secret.stringData as Record<string, string>)) {
    let v = value.replace(/@?(easeemail-(?:db|redis|mailpit)):/g, (m, host: string) => m.replace(host, hosts[host]));
    if (key === 'DATABASE_URL') v += `${v.includes('?') ? '&' : '?'}schema=${schema}`;
    secret.stringData[key] = v;
  }
  configMap = structuredClone(cm);
  configMap.metadata.name = `${names.configMap}-${id}`;

  deployments = {} as Record<Role, K8sObject>;
  for (const role of ROLES) {
    const original = app.find((d) => d.kind === 'Deployment' && d.spec.template.spec.containers[0].args?.[0] === role);
    if (!original) throw new Error(`k8s/dev/easeemail.k8s.yaml has no Deployment whose container runs "${role}"`);
    const d = structuredClone(original);
    d.metadata.name = `${original.metadata.name}-${id}`;
    const pod = d.spec.template.spec;
    // podman 4.3 applies the pod's restartPolicy to init containers too and restarts a finished
    // `migrate --wait` under "Always" (containers/podman#16343); OnFailure still restarts a crashed app.
    pod.restartPolicy = 'OnFailure';
    for (const v of pod.volumes ?? []) if (v.emptyDir) v.name = `${v.name}-${id}`;
    for (const c of containersOf(d)) {
      c.image = IMAGE_FULL_NAME;
      for (const m of c.volumeMounts ?? []) if (pod.volumes.some((v: K8sObject) => v.name === `${m.name}-${id}`)) m.name = `${m.name}-${id}`;
      for (const e of c.env ?? []) {
        if (e.valueFrom?.secretKeyRef?.name === names.secret) e.valueFrom.secretKeyRef.name = secret.metadata.name;
        if (e.valueFrom?.configMapKeyRef?.name === names.configMap) e.valueFrom.configMapKeyRef.name = configMap.metadata.name;
      }
      for (const from of c.envFrom ?? []) {
        if (from.secretRef?.name === names.secret) from.secretRef.name = secret.metadata.name;
        if (from.configMapRef?.name === names.configMap) from.configMapRef.name = configMap.metadata.name;
      }
    }
    const main = pod.containers[0];
    for (const p of main.ports ?? []) p.hostPort = hostPorts[role];
    const live = main.livenessProbe;
    if (!live?.httpGet) throw new Error(`${original.metadata.name}: expected an httpGet livenessProbe`);
    main.livenessProbe = { exec: { command: ['easeemail', 'healthcheck', role] }, periodSeconds: live.periodSeconds, timeoutSeconds: live.timeoutSeconds, failureThreshold: live.failureThreshold };
    deployments[role] = d;
  }
  return [configMap, secret, deployments.api, deployments.worker].map((d) => `---\n${JSON.stringify(d, null, 2)}\n`).join('');
}

/** The running pod's main container (podman names it <pod>-<container>). */
async function podContainer(role: Role): Promise<{ name: string; inspect: K8sObject }> {
  const deployment = deployments[role];
  const name = `${deployment.metadata.name}-pod-0-${deployment.spec.template.spec.containers[0].name}`;
  const r = await podman(['container', 'inspect', name]);
  return { name, inspect: JSON.parse(r.stdout)[0] };
}

const execIn = (container: string, args: string[]) => run('podman', ['exec', container, ...args], { timeoutMs: 30_000 });

beforeAll(async () => {
  if (!existsSync(KUBE_PLAY)) throw new Error(`no kube-play at ${KUBE_PLAY}: set CONTAINER_LAB to the container lab's folder`);
  project = await ComposeProject.create('eectkube');
  await project.compose(['up', '-d', 'db', 'redis', 'mailpit']);
  await project.waitHealthy({ timeoutMs: 120_000, expect: { db: 1, redis: 1, mailpit: 1 } });
  hostPorts.api = await freePort();
  hostPorts.worker = await freePort();
  workDir = mkdtempSync(path.join(os.tmpdir(), 'easeemail-kube-'));
  manifestFile = path.join(workDir, 'lab.k8s.yaml');
  writeFileSync(manifestFile, adaptManifests());
  // What the migration Job does; the pods' init containers (`migrate --wait`) then pass.
  const migrateEnv = { DATABASE_URL: `postgresql://easeemail:easeemail@db:5432/easeemail?schema=${schema}` };
  const migrated = await runToCompletion(['--network', project.network('internal'), '-e', `DATABASE_URL=${migrateEnv.DATABASE_URL}`, IMAGE, 'migrate']);
  if (migrated.exitCode !== 0) throw new Error(`migrate failed:\n${migrated.output}`);
  // The data stores' network, plus the public one: podman forwards published ports only there.
  const play = await mustRun(KUBE_PLAY, [manifestFile, '--network', `${project.network('internal')},${project.network('public')}`], { timeoutMs: 300_000 });
  report(`kube-play of the adapted k8s/dev Deployments: ${(play.ms / 1000).toFixed(1)} s`);
}, 10 * 60_000);

afterAll(async () => {
  if (manifestFile) await run(KUBE_PLAY, ['--down', manifestFile], { timeoutMs: 120_000 });
  await run('podman', ['volume', 'rm', '-f', `tmp-${id}`]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  await project?.down();
}, 240_000);

describe('k8s/dev Deployments under podman kube play', () => {
  test.each(ROLES)('%s: runs the built image with the manifest env, as uid 1000 on a read-only root with a writable /tmp', async (role) => {
    const { name, inspect } = await podContainer(role);
    const container = deployments[role].spec.template.spec.containers[0];
    expect(inspect.ImageName).toBe(IMAGE_FULL_NAME);
    expect(inspect.Config.Cmd).toEqual(container.args);
    expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect.HostConfig.Memory).toBe(Number(container.resources.limits.memory.replace('Mi', '')) * 1024 * 1024);

    const ids = await execIn(name, ['bash', '-c', 'id -u; id -g; touch /app/probe 2>/dev/null && echo root-writable || echo root-read-only; touch /tmp/probe && echo tmp-writable']);
    expect(ids.stdout.trim().split('\n')).toEqual(['1000', '1000', 'root-read-only', 'tmp-writable']);

    // Every variable the manifest declares is set; ConfigMap values arrive unchanged.
    for (const e of container.env as K8sObject[]) {
      const value = (await execIn(name, ['printenv', e.name])).stdout.trim();
      if (e.valueFrom?.configMapKeyRef) expect(`${e.name}=${value}`).toBe(`${e.name}=${configMap.data[e.valueFrom.configMapKeyRef.key]}`);
      else expect(`${e.name}=${value ? 'set' : 'missing'}`).toBe(`${e.name}=set`);
    }
  });

  test.each(ROLES)('%s: becomes ready against PostgreSQL and Redis, and its liveness check turns healthy', async (role) => {
    const container = deployments[role].spec.template.spec.containers[0];
    const readiness = container.readinessProbe.httpGet;
    const t0 = Date.now();
    // What the kubelet's readinessProbe would ask, on the published port.
    const ready = await eventually(
      async () => {
        const r = await http(`http://127.0.0.1:${hostPorts[role]}${readiness.path}`);
        return r.status === 200 ? r.body : undefined;
      },
      `${role} ${readiness.path} on 127.0.0.1:${hostPorts[role]}`,
      { ...POLL, timeoutMs: 120_000, describe: async () => { const r = await run('podman', ['logs', (await podContainer(role)).name]); return (r.stdout + r.stderr).slice(-4000); } },
    );
    expect(ready).toMatchObject({ status: 'ready', database: 'ok', redis: 'ok' });
    const { name } = await podContainer(role);
    expect((await execIn(name, ['easeemail', 'healthcheck', role, '--ready'])).code).toBe(0);
    const health = await eventually(
      async () => {
        const s = (await podContainer(role)).inspect.State;
        const status = s.Health?.Status ?? s.Healthcheck?.Status;
        return status === 'healthy' ? status : undefined;
      },
      `${role} liveness healthcheck to pass`,
      { ...POLL, timeoutMs: 60_000 },
    );
    expect(health).toBe('healthy');
    report(`${role} pod ready and live ${((Date.now() - t0) / 1000).toFixed(1)} s after the readiness polling began`);
  });

  test('the pods work together: an email accepted by the api pod is delivered by the worker pod', async () => {
    const { name } = await podContainer('api');
    const created = await execIn(name, ['easeemail', 'api-keys', 'create', '--name', `kube-${id}`, '--scopes', 'emails:send']);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    const subject = `kube smoke ${id}`;
    const sent = await http(`http://127.0.0.1:${hostPorts.api}/v1/emails`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, json: { to: 'kube@example.com', subject, text: 'from the kube-play pods' } });
    expect(sent.status).toBe(202);
    const found = await eventually(
      async () => {
        const r = await http(`http://127.0.0.1:${project.ports.mailpit}/api/v1/search?query=${encodeURIComponent(`subject:${id}`)}`);
        return r.body?.messages?.length ? r.body.messages[0] : undefined;
      },
      'the email in mailpit',
      { ...POLL, timeoutMs: 60_000 },
    );
    expect(found.Subject).toBe(subject);
  });
});
