/**
 * Policy: what every synthesized manifest must satisfy, checked on the committed files against
 * the application contract (written out here, independently of charts/model.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import packageJson from '../../package.json';
import type { ProfileName } from '../../charts/model';
import {
  containersOf,
  find,
  loadProfile,
  manifestFiles,
  ofKind,
  podSpec,
  quantity,
  REPO_ROOT,
  roleContainer,
  workloads,
  type Container,
  type K8sObject,
} from './support/manifests';

const APP_IMAGE = `${packageJson.name}:${packageJson.version}`;
const APP_UID = 1000;
const PROFILES: ProfileName[] = ['dev', 'prod'];

/** What the app serves, per the contract: port setting, port, and the paths on it. */
const SERVED = {
  api: { portKey: 'PORT', port: 8000, paths: ['/health/live', '/health/ready', '/health', '/metrics'] },
  worker: { portKey: 'WORKER_HEALTH_PORT', port: 8001, paths: ['/health/live', '/health/ready', '/metrics'] },
  inbound: { portKey: 'INBOUND_HEALTH_PORT', port: 8002, paths: ['/health/live', '/health/ready', '/metrics'] },
} as const;

/** Expected memory limits per role (contract), in bytes. */
const MEMORY_LIMITS = { api: 512 * 2 ** 20, worker: 384 * 2 ** 20, inbound: 256 * 2 ** 20, migrate: 256 * 2 ** 20 };

const isAppContainer = (c: Container) => c.image === APP_IMAGE;
const allContainers = (o: K8sObject) => [...containersOf(o).init, ...containersOf(o).main];
const labelsMatch = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Does a LabelSelector (matchLabels + In/NotIn/Exists expressions) select these labels? */
function selects(selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }, labels: Record<string, string> = {}): boolean {
  if (!labelsMatch(selector.matchLabels ?? {}, labels)) return false;
  return (selector.matchExpressions ?? []).every((e) => {
    const v = labels[e.key];
    if (e.operator === 'In') return v !== undefined && (e.values ?? []).includes(v);
    if (e.operator === 'NotIn') return v === undefined || !(e.values ?? []).includes(v);
    if (e.operator === 'Exists') return v !== undefined;
    if (e.operator === 'DoesNotExist') return v === undefined;
    throw new Error(`unknown operator ${e.operator}`);
  });
}

function selectorText(s: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined): string {
  if (!s) return '';
  const parts = [
    ...Object.entries(s.matchLabels ?? {})
      .filter(([k]) => k !== 'app.kubernetes.io/name')
      .map(([k, v]) => `${k.replace('app.kubernetes.io/', '')}=${v}`),
    ...(s.matchExpressions ?? []).map((e) => `${e.key.replace('app.kubernetes.io/', '')} ${e.operator} (${(e.values ?? []).join(',')})`),
  ];
  return parts.length ? parts.join(',') : '*';
}

/** A peer as text: `ip:CIDR except A,B`, `ns:X pod:Y`, `pod:component=db`. */
function peerText(p: { ipBlock?: { cidr: string; except?: string[] }; namespaceSelector?: object; podSelector?: object }): string {
  if (p.ipBlock) return `ip:${p.ipBlock.cidr}${p.ipBlock.except ? ` except ${p.ipBlock.except.join(',')}` : ''}`;
  const parts: string[] = [];
  if (p.namespaceSelector) parts.push(`ns:${selectorText(p.namespaceSelector) || '*'}`);
  if (p.podSelector) parts.push(`pod:${selectorText(p.podSelector) || '*'}`);
  return parts.join(' ');
}

/** Every allowed flow of a profile, one line each: `policy direction peers ports`. */
function flows(objects: K8sObject[]): string[] {
  const out: string[] = [];
  for (const np of ofKind(objects, 'NetworkPolicy')) {
    const who = `${np.metadata.name}[${selectorText(np.spec.podSelector)}]`;
    for (const [direction, rules, key] of [
      ['ingress', np.spec.ingress ?? [], 'from'],
      ['egress', np.spec.egress ?? [], 'to'],
    ] as const) {
      for (const rule of rules) {
        const peers = rule[key] ? rule[key].map(peerText).join(' | ') : 'anywhere';
        const ports = rule.ports ? rule.ports.map((p: { protocol: string; port: number }) => `${p.protocol}/${p.port}`).join(',') : 'all ports';
        out.push(`${who} ${direction} ${peers} on ${ports}`);
      }
    }
  }
  return out.sort();
}

const ANY_ADDRESS = 'ip:0.0.0.0/0 | ip:::/0 | ns:*';
const PUBLIC_WEB =
  'ip:0.0.0.0/0 except 10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,192.168.0.0/16 | ip:::/0 except ::1/128,::ffff:0:0/96,fc00::/7,fe80::/10';
const DNS = 'easeemail-allow-dns[*] egress ns:kubernetes.io/metadata.name=kube-system pod:k8s-app=kube-dns on UDP/53,TCP/53';
const SMTP_PORTS = 'TCP/25,TCP/465,TCP/587,TCP/1025';

describe.each(PROFILES)('policy: %s profile', (profile) => {
  const objects = loadProfile(profile);
  const config = find(objects, 'ConfigMap', 'easeemail-config').data as Record<string, string>;

  it('every container has a memory limit, CPU and memory requests, requests within limits, and no CPU limit', () => {
    for (const o of workloads(objects)) {
      for (const c of allContainers(o)) {
        const at = `${o.metadata.name}/${c.name}`;
        const { limits = {}, requests = {} } = c.resources ?? {};
        expect({ at, limit: limits.memory !== undefined, cpu: requests.cpu !== undefined, memory: requests.memory !== undefined }).toEqual({ at, limit: true, cpu: true, memory: true });
        expect(quantity(requests.memory, 'bytes')).toBeLessThanOrEqual(quantity(limits.memory, 'bytes'));
        // No CPU limit on purpose (charts/model.ts cpuLimitMillis: CFS throttling adds latency spikes).
        expect({ at, cpuLimit: limits.cpu }).toEqual({ at, cpuLimit: undefined });
      }
    }
  });

  it('the app containers have the contract memory limits', () => {
    for (const role of ['api', 'worker', 'inbound'] as const) {
      expect(quantity(roleContainer(find(objects, 'Deployment', `easeemail-${role}`), role).resources.limits.memory, 'bytes')).toBe(MEMORY_LIMITS[role]);
    }
    const job = ofKind(objects, 'Job')[0];
    expect(quantity(roleContainer(job, 'migrate').resources.limits.memory, 'bytes')).toBe(MEMORY_LIMITS.migrate);
  });

  it('every container runs non-root, read-only, without privileges or capabilities', () => {
    for (const o of workloads(objects)) {
      for (const c of allContainers(o)) {
        expect({ at: `${o.metadata.name}/${c.name}`, ...c.securityContext }).toMatchObject({
          at: `${o.metadata.name}/${c.name}`,
          runAsNonRoot: true,
          privileged: false,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        if (isAppContainer(c)) expect(c.securityContext).toMatchObject({ runAsUser: APP_UID, runAsGroup: APP_UID });
      }
    }
  });

  it('every pod has RuntimeDefault seccomp, a non-root identity and no service account token', () => {
    for (const o of workloads(objects)) {
      const spec = podSpec(o);
      expect({ at: o.metadata.name, seccomp: spec.securityContext?.seccompProfile, runAsNonRoot: spec.securityContext?.runAsNonRoot, token: spec.automountServiceAccountToken }).toEqual({
        at: o.metadata.name,
        seccomp: { type: 'RuntimeDefault' },
        runAsNonRoot: true,
        token: false,
      });
      if (allContainers(o).some(isAppContainer)) {
        expect(spec.securityContext).toMatchObject({ runAsUser: APP_UID, runAsGroup: APP_UID, fsGroup: APP_UID });
      }
    }
  });

  it('app pods have an emptyDir at /tmp under their read-only root', () => {
    for (const o of workloads(objects).filter((w) => allContainers(w).some(isAppContainer))) {
      const volumes = podSpec(o).volumes ?? [];
      for (const c of allContainers(o)) {
        const mount = (c.volumeMounts ?? []).find((m: { mountPath: string }) => m.mountPath === '/tmp');
        expect({ at: `${o.metadata.name}/${c.name}`, mounted: Boolean(mount) }).toEqual({ at: `${o.metadata.name}/${c.name}`, mounted: true });
        expect(volumes.find((v: { name: string }) => v.name === mount.name)?.emptyDir).toBeDefined();
      }
    }
  });

  it('every Deployment container has startup, liveness and readiness probes', () => {
    for (const d of ofKind(objects, 'Deployment')) {
      for (const c of containersOf(d).main) {
        expect({ at: `${d.metadata.name}/${c.name}`, startup: !!c.startupProbe, liveness: !!c.livenessProbe, readiness: !!c.readinessProbe }).toEqual({
          at: `${d.metadata.name}/${c.name}`,
          startup: true,
          liveness: true,
          readiness: true,
        });
      }
    }
  });

  it('images: the app image everywhere for the app, versioned, never :latest', () => {
    const images = workloads(objects).flatMap((o) => allContainers(o).map((c) => c.image));
    for (const image of images) expect(image).not.toMatch(/:latest$/);
    for (const image of images.filter((i) => !i.startsWith('postgres:') && !i.startsWith('redis:') && i !== 'axllent/mailpit')) {
      expect(image).toBe(APP_IMAGE);
    }
    // Only the dev mail catcher floats (the contract names it untagged); everything else is tagged.
    expect(images.filter((i) => !/:[^/]+$/.test(i) && !i.includes('@'))).toEqual(profile === 'dev' ? ['axllent/mailpit'] : []);
  });

  it('api, worker and inbound: own ServiceAccount without token, migrate --wait init container, safe rollout', () => {
    const sa = find(objects, 'ServiceAccount', 'easeemail');
    expect(sa.automountServiceAccountToken).toBe(false);
    for (const role of ['api', 'worker', 'inbound'] as const) {
      const d = find(objects, 'Deployment', `easeemail-${role}`);
      expect(podSpec(d).serviceAccountName).toBe('easeemail');
      expect(roleContainer(d, role).args).toEqual([role]);
      expect(containersOf(d).init.map((c) => [c.name, c.image, c.args])).toEqual([['migrate-wait', APP_IMAGE, ['migrate', '--wait', '--timeout', '300']]]);
      expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } });
      expect(podSpec(d).terminationGracePeriodSeconds).toBeGreaterThan(Number(config.SHUTDOWN_TIMEOUT_MS) / 1000);
      expect(d.spec.replicas).toBeUndefined(); // the HPA owns the replica count
    }
  });

  it('every Deployment of the app has an autoscaling/v2 HPA and a PDB that select it', () => {
    for (const d of ofKind(objects, 'Deployment').filter((x) => containersOf(x).main.some(isAppContainer))) {
      const hpa = ofKind(objects, 'HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.name === d.metadata.name);
      expect({ at: d.metadata.name, apiVersion: hpa?.apiVersion, kind: hpa?.spec.scaleTargetRef.kind }).toEqual({ at: d.metadata.name, apiVersion: 'autoscaling/v2', kind: 'Deployment' });
      expect(hpa!.spec.minReplicas).toBeLessThanOrEqual(hpa!.spec.maxReplicas);
      // CPU always; the worker adds its backlog where the model says so (test/manifests/monitoring.test.ts).
      expect(hpa!.spec.metrics[0]).toEqual({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } });
      const pdbs = ofKind(objects, 'PodDisruptionBudget').filter((p) => selects(p.spec.selector, d.spec.template.metadata.labels));
      expect({ at: d.metadata.name, pdbs: pdbs.length }).toEqual({ at: d.metadata.name, pdbs: 1 });
    }
  });

  it('the ConfigMap carries the contract settings', () => {
    expect(config).toEqual({
      BOUNCE_DOMAIN: profile === 'prod' ? 'bounces.example.com' : 'bounces.easeemail.test',
      // DKIM is off in prod until the operator sets these and adds the key to the Secret.
      DKIM_DOMAIN: profile === 'prod' ? '' : 'easeemail.test',
      DKIM_SELECTOR: profile === 'prod' ? '' : 'dev',
      INBOUND_HEALTH_PORT: '8002',
      INBOUND_PORT: '2525',
      LOG_LEVEL: 'info',
      MAIL_FROM: expect.any(String),
      PORT: '8000',
      RUN_MIGRATIONS: 'false',
      SHUTDOWN_TIMEOUT_MS: '25000',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: profile === 'prod' ? 'false' : 'true',
      WORKER_CONCURRENCY: '50',
      WORKER_HEALTH_PORT: '8001',
    });
  });

  it('every probe targets a port the container declares and a path the app serves there', () => {
    for (const role of ['api', 'worker', 'inbound'] as const) {
      const served = SERVED[role];
      const c = roleContainer(find(objects, 'Deployment', `easeemail-${role}`), role);
      const declared = (c.ports ?? []).map((p: { containerPort: number }) => p.containerPort);
      for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const { path, port } = c[kind].httpGet;
        expect({ role, kind, port, path, declared: declared.includes(port), served: (served.paths as readonly string[]).includes(path) }).toEqual({
          role,
          kind,
          port: served.port,
          path,
          declared: true,
          served: true,
        });
      }
      // The process listens where its setting says, and that setting is what the pod gets.
      expect(config[served.portKey]).toBe(String(served.port));
    }
    expect(roleContainer(find(objects, 'Deployment', 'easeemail-api'), 'api').livenessProbe.httpGet.path).toBe('/health/live');
    expect(roleContainer(find(objects, 'Deployment', 'easeemail-api'), 'api').readinessProbe.httpGet.path).toBe('/health/ready');
  });

  it('the per-release migration Job: named after the image version, hook-ordered, bounded', () => {
    const jobs = ofKind(objects, 'Job');
    expect(jobs.map((j) => j.metadata.name)).toEqual([`easeemail-migrate-${packageJson.version.replace(/\./g, '-')}`]);
    const [job] = jobs;
    expect(job.metadata.annotations).toMatchObject({
      'helm.sh/hook': 'pre-install,pre-upgrade',
      'helm.sh/hook-weight': expect.any(String),
      'helm.sh/hook-delete-policy': 'before-hook-creation',
      'argocd.argoproj.io/hook': 'PreSync',
      'argocd.argoproj.io/sync-wave': expect.any(String),
    });
    expect(job.spec).toMatchObject({ backoffLimit: expect.any(Number), activeDeadlineSeconds: expect.any(Number), ttlSecondsAfterFinished: expect.any(Number) });
    expect(podSpec(job).restartPolicy).toBe('Never');
    const c = roleContainer(job, 'migrate');
    expect([c.image, c.args, c.command]).toEqual([APP_IMAGE, ['migrate'], undefined]);
    // Hooks run before the ConfigMap exists: the Job must not depend on it.
    expect(JSON.stringify(job)).not.toMatch(/configMapKeyRef|configMapRef/);
  });

  it('a default-deny policy covers every pod, and DNS is allowed for every pod', () => {
    const policies = ofKind(objects, 'NetworkPolicy');
    const deny = find(objects, 'NetworkPolicy', 'easeemail-default-deny');
    expect(deny.spec).toEqual({ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'easeemail' } }, policyTypes: ['Ingress', 'Egress'] });
    for (const o of workloads(objects)) {
      expect({ pod: o.metadata.name, denied: selects(deny.spec.podSelector, o.spec.template.metadata.labels) }).toEqual({ pod: o.metadata.name, denied: true });
    }
    // No policy is dead: each selects at least one pod template.
    for (const np of policies) {
      expect({ policy: np.metadata.name, selects: workloads(objects).some((o) => selects(np.spec.podSelector, o.spec.template.metadata.labels)) }).toEqual({ policy: np.metadata.name, selects: true });
    }
  });
});

describe('policy: prod', () => {
  const objects = loadProfile('prod');

  it('has no Secret (the operator creates it) and no dev credentials anywhere', () => {
    expect(ofKind(objects, 'Secret')).toEqual([]);
    for (const file of manifestFiles('prod')) {
      const text = readFileSync(file, 'utf8');
      expect(text).not.toMatch(/stringData|ee_dev_|ZGV2LW9ubHkt|easeemail:easeemail@|BOOTSTRAP_API_KEY/);
    }
  });

  it('scales api 2→10, worker 3→20 and inbound 2→6 at 70 % CPU', () => {
    const bounds = ofKind(objects, 'HorizontalPodAutoscaler').map((h) => [h.metadata.name, h.spec.minReplicas, h.spec.maxReplicas]);
    expect(bounds).toEqual([
      ['easeemail-api', 2, 10],
      ['easeemail-inbound', 2, 6],
      ['easeemail-worker', 3, 20],
    ]);
  });

  it('inbound: a LoadBalancer Service from port 25 to the listener on 2525, the only port open to the world', () => {
    const service = find(objects, 'Service', 'easeemail-inbound');
    expect(service.spec.type).toBe('LoadBalancer');
    expect(service.spec.ports).toEqual([{ name: 'smtp', port: 25, targetPort: 2525 }]);
    expect(service.spec.selector).toMatchObject({ 'app.kubernetes.io/component': 'inbound' });
    const inbound = roleContainer(find(objects, 'Deployment', 'easeemail-inbound'), 'inbound');
    expect(inbound.ports.map((p: { containerPort: number }) => p.containerPort)).toEqual([2525, 8002]);
    expect(flows(objects).filter((f) => f.startsWith('easeemail-inbound') && f.includes('ingress'))).toEqual(['easeemail-inbound[component=inbound] ingress anywhere on TCP/2525']);
    expect(find(objects, 'PodDisruptionBudget', 'easeemail-inbound').spec.maxUnavailable).toBe(1);
  });

  it('allows exactly the flows the design names', () => {
    expect(flows(objects)).toEqual(
      [
        DNS,
        `easeemail-api[component=api] ingress anywhere on TCP/8000`,
        `easeemail-api[component=api] egress ${ANY_ADDRESS} on TCP/5432`,
        `easeemail-api[component=api] egress ${ANY_ADDRESS} on TCP/6379`,
        `easeemail-worker[component=worker] egress ${ANY_ADDRESS} on TCP/5432`,
        `easeemail-worker[component=worker] egress ${ANY_ADDRESS} on TCP/6379`,
        `easeemail-worker[component=worker] egress ${ANY_ADDRESS} on ${SMTP_PORTS}`,
        `easeemail-worker[component=worker] egress ${PUBLIC_WEB} on TCP/80,TCP/443`,
        `easeemail-migrate[component=migrate] egress ${ANY_ADDRESS} on TCP/5432`,
        `easeemail-inbound[component=inbound] ingress anywhere on TCP/2525`,
        `easeemail-inbound[component=inbound] egress ${ANY_ADDRESS} on TCP/5432`,
        `easeemail-inbound[component=inbound] egress ${ANY_ADDRESS} on TCP/6379`,
      ].sort(),
    );
  });
});

describe('policy: dev', () => {
  const objects = loadProfile('dev');

  it('adds PostgreSQL, Redis and the mail catcher, one replica each', () => {
    const deps = ofKind(objects, 'Deployment')
      .filter((d) => !containersOf(d).main.some(isAppContainer))
      .map((d) => [d.metadata.name, d.spec.replicas, containersOf(d).main[0].image]);
    expect(deps).toEqual([
      ['easeemail-db', 1, 'postgres:15-alpine'],
      ['easeemail-mailpit', 1, 'axllent/mailpit'],
      ['easeemail-redis', 1, 'redis:7-alpine'],
    ]);
    const mailpit = containersOf(find(objects, 'Deployment', 'easeemail-mailpit')).main[0];
    expect(mailpit.ports.map((p: { containerPort: number }) => p.containerPort)).toEqual([1025, 8025]);
    expect(mailpit.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 8025 });
  });

  it('generates the app Secret with every key, pointing at the in-cluster services', () => {
    const secret = find(objects, 'Secret', 'easeemail');
    expect(Object.keys(secret.stringData).sort()).toEqual(['BOOTSTRAP_API_KEY', 'DATABASE_URL', 'DKIM_PRIVATE_KEY', 'ENCRYPTION_KEY', 'REDIS_URL', 'SMTP_URL']);
    expect(secret.stringData.DKIM_PRIVATE_KEY).toMatch(/^-----BEGIN PRIVATE KEY-----\\n/);
    expect(secret.stringData.SMTP_URL).toBe('smtp://easeemail-mailpit:1025');
    expect(secret.stringData.BOOTSTRAP_API_KEY).toMatch(/^ee_dev_[A-Za-z0-9_-]{16,}$/);
    expect(Buffer.from(secret.stringData.ENCRYPTION_KEY, 'base64')).toHaveLength(32);
    for (const host of ['easeemail-db', 'easeemail-redis', 'easeemail-mailpit']) find(objects, 'Service', host);
  });

  it('allows exactly the dev flows: stores only from their clients, webhooks anywhere', () => {
    expect(flows(objects)).toEqual(
      [
        DNS,
        `easeemail-api[component=api] ingress anywhere on TCP/8000`,
        `easeemail-api[component=api] egress pod:component=db on TCP/5432`,
        `easeemail-api[component=api] egress pod:component=redis on TCP/6379`,
        `easeemail-worker[component=worker] egress pod:component=db on TCP/5432`,
        `easeemail-worker[component=worker] egress pod:component=redis on TCP/6379`,
        `easeemail-worker[component=worker] egress ${ANY_ADDRESS} on ${SMTP_PORTS}`,
        // WEBHOOK_ALLOW_PRIVATE_NETWORKS=true: local receivers on private networks, any port
        `easeemail-worker[component=worker] egress anywhere on all ports`,
        `easeemail-migrate[component=migrate] egress pod:component=db on TCP/5432`,
        `easeemail-inbound[component=inbound] ingress anywhere on TCP/2525`,
        `easeemail-inbound[component=inbound] egress pod:component=db on TCP/5432`,
        `easeemail-inbound[component=inbound] egress pod:component=redis on TCP/6379`,
        `easeemail-db[component=db] ingress pod:component In (api,inbound,migrate,worker) on TCP/5432`,
        `easeemail-redis[component=redis] ingress pod:component In (api,inbound,worker) on TCP/6379`,
        `easeemail-mailpit[component=mailpit] ingress pod:component In (worker) on TCP/1025`,
        `easeemail-mailpit[component=mailpit] ingress anywhere on TCP/8025`,
      ].sort(),
    );
  });
});

describe('policy: the probed paths exist in the app', () => {
  /** Non-test TypeScript sources of the app. */
  function sources(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return name === 'generated' ? [] : sources(path);
      return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
    });
  }

  it.each(['/health/live', '/health/ready', '/metrics'])('app/ routes %s', (path) => {
    const defining = sources(join(REPO_ROOT, 'app')).filter((f) => readFileSync(f, 'utf8').includes(`'${path}'`));
    expect(defining.length).toBeGreaterThan(0);
  });
});
