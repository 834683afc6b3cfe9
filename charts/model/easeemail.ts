/**
 * The EaseEmail deployment model: every workload described once (image, arguments, environment
 * and where each value comes from, ports, probes, resources, scaling, network peers), plus the
 * dev stand-ins for the external services.
 *
 * Two renderers read it and nothing else: the cdk8s charts (`charts/main.ts`) for Kubernetes and
 * the compose generator (`compose/generate.ts`). Anything both sides must agree on lives here, so
 * they cannot drift; `test/manifests/parity.test.ts` checks the rendered outputs against each other.
 * Values that follow from others (heap caps, Redis flags, names) are derived in `derive.ts`;
 * `validate.ts` checks every invariant.
 */
import { JOB_KINDS, JOBS } from '../../app/queue';
import packageJson from '../../package.json';
import { buildRules, type MonitoringThresholds } from '../monitoring/rules';
import type { ScalingBehaviorSpec } from '../monitoring/scaling';
import { DEFAULT_IMAGE, parseImage } from './derive';
import type { ConfigKey, DeploymentModel, EnvSpec, PortSpec, ProbesSpec, ServerRole, ServerWorkloadSpec, Settings } from './types';

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
const INBOUND_SMTP_PORT = 2525;
const INBOUND_HEALTH_PORT = 8002;
const SHUTDOWN_TIMEOUT_MS = 25_000;

/** Startup: up to 2 min for the entrypoint's bounded wait for PostgreSQL/Redis plus boot. */
function probes(port: string): ProbesSpec {
  return {
    startup: { path: '/health/live', port, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 60 },
    liveness: { path: '/health/live', port, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
    readiness: { path: '/health/ready', port, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 },
  };
}

/**
 * The settings the model sets for every profile (the ConfigMap's keys); any other key of
 * app/config.ts keeps the app's default.
 */
const SHARED_SETTINGS = {
  // The return-path domain: its MX must point at the inbound Service (README, Deploy). A
  // placeholder like MAIL_FROM's: set yours.
  BOUNCE_DOMAIN: 'bounces.example.com',
  // DKIM signing is off while these are empty; set them with the DKIM_PRIVATE_KEY secret (README, Deploy).
  DKIM_DOMAIN: '',
  DKIM_SELECTOR: '',
  INBOUND_HEALTH_PORT: String(INBOUND_HEALTH_PORT),
  INBOUND_PORT: String(INBOUND_SMTP_PORT),
  LOG_LEVEL: 'info',
  MAIL_FROM: 'EaseEmail <notifications@example.com>',
  PORT: String(API_PORT),
  // Migrations run in the migrate Job / compose service, never inside api replicas.
  RUN_MIGRATIONS: 'false',
  SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false',
  WORKER_CONCURRENCY: '50',
  WORKER_HEALTH_PORT: String(WORKER_HEALTH_PORT),
} as const satisfies Settings;

/** api and worker read every setting the model sets; the app parses one schema for all roles. */
const SERVER_ENV: EnvSpec = {
  secrets: ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'ENCRYPTION_KEY', 'DKIM_PRIVATE_KEY'],
  config: Object.keys(SHARED_SETTINGS) as (keyof typeof SHARED_SETTINGS)[],
};

/**
 * What every long-running role shares: started by its role argument, health served on one port
 * (named by a setting, probed there and by `easeemail healthcheck <role>`), every setting, and a
 * grace period above SHUTDOWN_TIMEOUT_MS (25 s) plus the drain delay.
 */
function serverRole(role: ServerRole, healthPort: PortSpec, healthPortKey: ConfigKey) {
  return {
    role,
    args: [role],
    ports: [healthPort],
    healthPortKey,
    probes: probes(healthPort.name),
    healthcheckCommand: ['easeemail', 'healthcheck', role],
    // /metrics is served beside health on the same port.
    metrics: { port: healthPort.name, path: '/metrics' },
    env: SERVER_ENV,
    terminationGracePeriodSeconds: 35,
  } satisfies Partial<ServerWorkloadSpec>;
}

/** The queues of the queue contract (app/queue/jobs.ts), by BullMQ name: a new job kind joins here. */
export const CONTRACT_QUEUES: readonly string[] = [...new Set(JOB_KINDS.map((kind) => JOBS[kind].queue))];

const ALERT_THRESHOLDS: MonitoringThresholds = {
  // Accepted → delivered is about a second when healthy (README, Performance): ten minutes of
  // waiting means the workers cannot keep up, for long enough not to page on a burst.
  backlogAge: Object.fromEntries(CONTRACT_QUEUES.map((q) => [q, { maxSeconds: 600, forSeconds: 600 }])),
  // Receivers fail now and then (retries are normal); a fifth of attempts failing for 15 minutes
  // is a receiver or relay outage.
  deliveryFailureRatio: { max: 0.2, forSeconds: 900 },
  apiErrorRatio: { max: 0.05, forSeconds: 600 },
  // Longer than a rollout's pod replacement plus a few 15 s scrapes.
  workerDownForSeconds: 300,
  // Well past a blip (readiness: every 5 s, 2 failures), well before a long outage.
  dependencyUnreadyForSeconds: 120,
  failedJobsGrowth: { minIncrease: 10, windowSeconds: 3600, forSeconds: 900 },
};

/** The api: up by 4 pods or 200 % a minute, down by at most 2 pods per 5 minutes (cdk8s-plus' former defaults). */
const API_SCALING: ScalingBehaviorSpec = {
  scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 60 }, { type: 'Percent', value: 200, periodSeconds: 60 }] },
  scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 2, periodSeconds: 300 }] },
};

/**
 * The worker: a backlog is work waiting, so add replicas at once (double, or +4, per minute); remove
 * them only after 5 minutes without need (a backlog often comes in waves), at most half a minute.
 */
const WORKER_SCALING: ScalingBehaviorSpec = {
  scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 60 }, { type: 'Percent', value: 100, periodSeconds: 60 }] },
  scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] },
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
    sharedConfig: SHARED_SETTINGS,
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
        config: { BOUNCE_DOMAIN: 'bounces.easeemail.test', DKIM_DOMAIN: 'easeemail.test', DKIM_SELECTOR: 'dev', MAIL_FROM: 'EaseEmail Dev <dev@easeemail.test>', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' },
        secret: { kind: 'generated' },
        extraSecretKeys: ['BOOTSTRAP_API_KEY'],
        devDependencies: true,
        // CPU only: a laptop cluster has no prometheus-adapter or KEDA.
        autoscaling: {
          api: { minReplicas: 1, maxReplicas: 3, targetCpuUtilizationPercent: 70, behavior: API_SCALING },
          worker: { minReplicas: 1, maxReplicas: 3, targetCpuUtilizationPercent: 70, behavior: WORKER_SCALING },
          inbound: { minReplicas: 1, maxReplicas: 2, targetCpuUtilizationPercent: 70, behavior: API_SCALING },
        },
      },
    },
    workloads: {
      api: {
        ...serverRole('api', { name: 'http', containerPort: API_PORT }, 'PORT'),
        resources: { cpuRequestMillis: 250, memoryRequestMiB: 256, memoryLimitMiB: 512 },
        autoscaling: { minReplicas: 2, maxReplicas: 10, targetCpuUtilizationPercent: 70, behavior: API_SCALING },
        peers: ['postgres', 'redis'],
        service: { port: 80, targetPort: 'http' },
        composePublish: { port: 'http', hostPortVariable: 'EASEEMAIL_API_PORT', defaultHostPort: API_PORT },
      },
      worker: {
        ...serverRole('worker', { name: 'health', containerPort: WORKER_HEALTH_PORT }, 'WORKER_HEALTH_PORT'),
        resources: { cpuRequestMillis: 250, memoryRequestMiB: 192, memoryLimitMiB: 384 },
        autoscaling: {
          minReplicas: 3,
          maxReplicas: 20,
          // CPU still counts: deliveries to fast peers are CPU-bound (README, Performance).
          targetCpuUtilizationPercent: 70,
          // A replica runs WORKER_CONCURRENCY (50) emails and 50 webhooks at once; 100 ready
          // items (emails, deliveries; a batch job counts as 100) each is a few seconds of work at
          // the measured rates, a minute behind a slow peer.
          backlog: {
            scaler: 'external-metric',
            readyJobsPerReplica: 100,
            externalMetricName: 'easeemail_ready_jobs',
            prometheusUrl: 'http://prometheus-operated.monitoring.svc:9090',
          },
          behavior: WORKER_SCALING,
        },
        peers: ['postgres', 'redis', 'smtp', 'webhooks'],
      },
      inbound: {
        ...serverRole('inbound', { name: 'health', containerPort: INBOUND_HEALTH_PORT }, 'INBOUND_HEALTH_PORT'),
        // SMTP first: the Service's target; health second (probes, metrics).
        ports: [
          { name: 'smtp', containerPort: INBOUND_SMTP_PORT },
          { name: 'health', containerPort: INBOUND_HEALTH_PORT },
        ],
        // Reports are small and parsed in memory; INBOUND_MAX_MESSAGE_BYTES (10 MiB) bounds one message.
        resources: { cpuRequestMillis: 100, memoryRequestMiB: 128, memoryLimitMiB: 256 },
        // Two replicas so a node drain or rollout never leaves the MX without a listener.
        autoscaling: { minReplicas: 2, maxReplicas: 6, targetCpuUtilizationPercent: 70, behavior: API_SCALING },
        peers: ['postgres', 'redis'],
        // Port 25 outside (what sending MTAs dial), 2525 inside (the app runs unprivileged).
        service: { port: 25, targetPort: 'smtp', type: 'LoadBalancer' },
        composePublish: { port: 'smtp', hostPortVariable: 'EASEEMAIL_INBOUND_PORT', defaultHostPort: INBOUND_SMTP_PORT },
      },
      migrate: {
        role: 'migrate',
        args: ['migrate'],
        waitArgs: ['migrate', '--wait', '--timeout', '300'],
        resources: { cpuRequestMillis: 100, memoryRequestMiB: 128, memoryLimitMiB: 256 },
        // `easeemail migrate` parses its config without Redis, and the entrypoint waits for PostgreSQL only.
        env: { secrets: ['DATABASE_URL'], config: ['LOG_LEVEL'] },
        peers: ['postgres'],
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
        redisServer: { maxMemoryPercent: 75, maxMemoryPolicy: 'noeviction' },
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
    monitoring: {
      scrapeIntervalSeconds: 15,
      prometheusNamespace: 'monitoring',
      // kube-prometheus-stack selects monitors and rules by its release label unless told otherwise.
      monitorLabels: { release: 'kube-prometheus-stack' },
      thresholds: ALERT_THRESHOLDS,
      rules: buildRules(CONTRACT_QUEUES, ALERT_THRESHOLDS),
      compose: {
        image: 'prom/prometheus:v2.42.0',
        uiPort: { port: 'http', hostPortVariable: 'PROMETHEUS_PORT', defaultHostPort: 9090 },
        memoryLimitMiB: 512,
      },
    },
    composeHealthcheck: { intervalSeconds: 2, timeoutSeconds: 3, retries: 5, startPeriodSeconds: 30 },
  };
}

