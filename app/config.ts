/**
 * The only module that reads `process.env`. Everything is parsed once, with one zod schema, into
 * a frozen typed object. Every secret X may instead come from the file named by X_FILE (Docker
 * and Kubernetes secret mounts). On bad input `loadConfig` throws a ConfigError that lists every
 * bad key; the CLI prints it and exits non-zero.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseDkimKey, type DkimSettings } from './deliverability/dkim';
import { RETENTION_DEFAULTS } from './retention/defaults';

/** Keys whose values are credentials: never logged, may come from X_FILE. */
export const SECRET_KEYS = ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'ENCRYPTION_KEY', 'BOOTSTRAP_API_KEY', 'POSTGRES_PASSWORD', 'DKIM_PRIVATE_KEY'] as const;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(1).max(65535);
/** A port to listen on; 0 lets the OS pick a free one (tests, benchmarks). */
const listenPort = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL with scheme ${protocols.map((p) => p.replace(':', '')).join(' or ')}`);

/** 32 bytes, as 64 hex characters or base64. */
const encryptionKey = z.string().transform((v, ctx) => {
  const bytes = /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  if (bytes.length !== 32) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes, as 64 hex characters or base64' });
    return z.NEVER;
  }
  return bytes;
});

const hostname = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i, 'must be a domain name such as bounces.example.com')
  .transform((v) => v.toLowerCase());

/** A PEM private key for DKIM: RSA of at least 2048 bits or Ed25519 (deliverability/dkim.ts). */
const dkimKey = z.string().transform((v, ctx) => {
  const parsed = parseDkimKey(v);
  if ('problem' in parsed) {
    ctx.addIssue({ code: 'custom', message: parsed.problem });
    return z.NEVER;
  }
  return parsed;
});

/** A readable file's contents (TLS certificate and key of the inbound listener). */
const fileContents = z.string().transform((path, ctx) => {
  try {
    return readFileSync(path);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
    return z.NEVER;
  }
});

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('production'),
    DATABASE_URL: url(['postgresql:', 'postgres:']).optional(),
    POSTGRES_SERVER: z.string().min(1).optional(),
    POSTGRES_PORT: port.default(5432),
    POSTGRES_USER: z.string().min(1).default('postgres'),
    POSTGRES_PASSWORD: z.string().default(''),
    POSTGRES_DB: z.string().min(1).default('easeemail'),
    REDIS_URL: url(['redis:', 'rediss:']).optional(),
    REDIS_HOST: z.string().min(1).optional(),
    REDIS_PORT: port.default(6379),
    /** Prefix for every Redis key (queues, rate-limit counters): lets deployments share a Redis. */
    REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only').default('easeemail'),
    SMTP_URL: url(['smtp:', 'smtps:']).default('smtp://127.0.0.1:1025'),
    MAIL_FROM: z.string().min(3).default('EaseEmail <no-reply@localhost>'),
    ENCRYPTION_KEY: encryptionKey.optional(),
    BOOTSTRAP_API_KEY: z.string().regex(/^ee_[A-Za-z0-9_-]{16,}$/, 'must look like ee_ followed by at least 16 characters').optional(),
    PORT: listenPort.default(8000),
    HOST: z.string().default('0.0.0.0'),
    WORKER_HEALTH_PORT: listenPort.default(8001),
    WORKER_CONCURRENCY: positiveInt.max(500).default(50),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    RUN_MIGRATIONS: bool.default(false),
    SHUTDOWN_TIMEOUT_MS: positiveInt.default(25_000),
    /** After SIGTERM the api keeps serving (readiness failing) this long, so load balancers stop routing to it first. */
    SHUTDOWN_DRAIN_DELAY_MS: z.coerce.number().int().min(0).default(2_000),
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: bool.default(false),
    /** SMTP connect/greeting/socket timeout; the queue lock must outlast it (checked at startup). */
    SMTP_TIMEOUT_MS: positiveInt.default(30_000),
    /** Pooled SMTP connections per worker process (nodemailer maxConnections). */
    SMTP_POOL_SIZE: positiveInt.max(100).default(5),
    WEBHOOK_TIMEOUT_MS: positiveInt.default(15_000),
    /** Webhook deliveries in flight per worker process. */
    WEBHOOK_CONCURRENCY: positiveInt.max(1000).default(50),
    /** In-flight deliveries to one endpoint per worker process: a slow endpoint holds at most this many of its slots. */
    WEBHOOK_ENDPOINT_MAX_IN_FLIGHT: positiveInt.max(1000).default(10),
    /** A receiver's Retry-After is honoured up to this long (longer answers are cut to it). */
    WEBHOOK_RETRY_AFTER_MAX_MS: positiveInt.default(3_600_000),
    /** BullMQ lock duration for delivery jobs. */
    JOB_LOCK_MS: positiveInt.default(60_000),
    EMAIL_MAX_ATTEMPTS: positiveInt.max(50).default(8),
    /** Base delay of the exponential SMTP retry backoff. */
    EMAIL_RETRY_BASE_MS: positiveInt.default(30_000),
    /** Comma-separated seconds between webhook attempts (Standard Webhooks' schedule by default). */
    WEBHOOK_RETRY_SCHEDULE: z
      .string()
      .regex(/^\d+(\.\d+)?(,\d+(\.\d+)?)*$/, 'comma-separated seconds, e.g. 5,300,1800')
      .default('5,300,1800,7200,18000,36000,36000')
      .transform((v) => v.split(',').map((s) => Math.round(Number(s) * 1000))),
    /** Sweeper period: how often the worker looks for due rows without a job. */
    SWEEP_INTERVAL_MS: positiveInt.default(5_000),
    /** Events, webhook deliveries and attempts, and inbound messages older than this are deleted, and email bodies dropped (retention/sweep.ts). */
    RETENTION_DAYS: positiveInt.max(3650).default(30),
    /** Events, emails or inbound messages per retention statement (an event goes with its deliveries and attempts). */
    RETENTION_BATCH_SIZE: positiveInt.max(10_000).default(RETENTION_DEFAULTS.batch),
    /** Pause between two retention statements: what the accept path gets back between batches. */
    RETENTION_PAUSE_MS: z.coerce.number().int().min(0).max(60_000).default(RETENTION_DEFAULTS.pauseMs),
    /** How long an api process trusts a cached key look-up: revocation takes effect within this. */
    API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).default(5_000),
    RATE_LIMIT_PER_SECOND: positiveInt.default(200),
    RATE_LIMIT_BURST: positiveInt.default(400),
    BODY_LIMIT_BYTES: positiveInt.default(10 * 1024 * 1024),
    /** Return-path domain (VERP); unset: no return path of ours, bounces are not tracked. */
    BOUNCE_DOMAIN: hostname.optional(),
    INBOUND_PORT: listenPort.default(2525),
    INBOUND_HEALTH_PORT: listenPort.default(8002),
    /** Larger messages get 552; reports are small, but some return the whole original. */
    INBOUND_MAX_MESSAGE_BYTES: positiveInt.default(10 * 1024 * 1024),
    /** Concurrent SMTP sessions per inbound process; more are turned away with 421. */
    INBOUND_MAX_CONNECTIONS: positiveInt.max(10_000).default(200),
    /** An idle SMTP session is closed after this long (RFC 5321 4.5.3.2 suggests minutes; reports are quick). */
    INBOUND_SOCKET_TIMEOUT_MS: positiveInt.default(60_000),
    /** STARTTLS for the inbound listener: PEM certificate chain and key files (both or neither). */
    INBOUND_TLS_CERT_FILE: fileContents.optional(),
    INBOUND_TLS_KEY_FILE: fileContents.optional(),
    DKIM_DOMAIN: hostname.optional(),
    DKIM_SELECTOR: z.string().regex(/^[a-z0-9](?:[a-z0-9._-]{0,62})$/i, 'letters, digits, . _ - (a DNS label)').optional(),
    DKIM_PRIVATE_KEY: dkimKey.optional(),
  })
  .superRefine((env, ctx) => {
    if (env.JOB_LOCK_MS <= Math.max(env.SMTP_TIMEOUT_MS, env.WEBHOOK_TIMEOUT_MS)) {
      ctx.addIssue({
        code: 'custom',
        path: ['JOB_LOCK_MS'],
        message: `must exceed SMTP_TIMEOUT_MS and WEBHOOK_TIMEOUT_MS (${Math.max(env.SMTP_TIMEOUT_MS, env.WEBHOOK_TIMEOUT_MS)} ms), or a slow send would be handed to a second worker`,
      });
    }
    if (env.BOUNCE_DOMAIN && !env.ENCRYPTION_KEY) {
      ctx.addIssue({ code: 'custom', path: ['BOUNCE_DOMAIN'], message: 'needs ENCRYPTION_KEY (the return-path tags are keyed from it)' });
    }
    const dkim = [env.DKIM_DOMAIN, env.DKIM_SELECTOR, env.DKIM_PRIVATE_KEY].filter((v) => v !== undefined).length;
    if (dkim !== 0 && dkim !== 3) {
      ctx.addIssue({ code: 'custom', path: ['DKIM_DOMAIN'], message: 'DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY go together: set all three or none' });
    }
    if ((env.INBOUND_TLS_CERT_FILE === undefined) !== (env.INBOUND_TLS_KEY_FILE === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['INBOUND_TLS_CERT_FILE'], message: 'INBOUND_TLS_CERT_FILE and INBOUND_TLS_KEY_FILE go together' });
    }
  });

/** Every variable `loadConfig` reads (secrets included; each secret X may also come as X_FILE). */
export const ENV_KEYS = Object.keys(schema.shape) as readonly EnvKey[];
export type EnvKey = keyof typeof schema.shape;
export type SecretKey = (typeof SECRET_KEYS)[number];
/** Variables that are settings, not credentials: safe in a ConfigMap or a compose file. */
export const SETTING_KEYS = ENV_KEYS.filter((key) => !(SECRET_KEYS as readonly string[]).includes(key)) as readonly SettingKey[];
export type SettingKey = Exclude<EnvKey, SecretKey>;

/** The file-mount variant of a secret: `DATABASE_URL_FILE`. */
export function secretFileKey(key: SecretKey): `${SecretKey}_FILE` {
  return `${key}_FILE`;
}

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Replaces X with the contents of X_FILE for every secret; both set is an error. */
function resolveSecretFiles(env: Env, problems: string[]): Env {
  const out: Env = { ...env };
  for (const key of SECRET_KEYS) {
    const file = env[secretFileKey(key)];
    if (file === undefined || file === '') continue;
    if (env[key] !== undefined && env[key] !== '') {
      problems.push(`${key}: set both ${key} and ${key}_FILE; use one`);
      continue;
    }
    try {
      out[key] = readFileSync(file, 'utf8').trim();
    } catch (err) {
      problems.push(`${key}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  // An empty variable means "not set": compose files often pass `${X:-}`.
  for (const [k, v] of Object.entries(out)) if (v === '') delete out[k];
  return out;
}

function buildDatabaseUrl(e: z.infer<typeof schema>): string | undefined {
  if (e.DATABASE_URL) return e.DATABASE_URL;
  if (!e.POSTGRES_SERVER) return undefined;
  const auth = e.POSTGRES_PASSWORD
    ? `${encodeURIComponent(e.POSTGRES_USER)}:${encodeURIComponent(e.POSTGRES_PASSWORD)}`
    : encodeURIComponent(e.POSTGRES_USER);
  return `postgresql://${auth}@${e.POSTGRES_SERVER}:${e.POSTGRES_PORT}/${encodeURIComponent(e.POSTGRES_DB)}`;
}

function buildRedisUrl(e: z.infer<typeof schema>): string | undefined {
  if (e.REDIS_URL) return e.REDIS_URL;
  if (!e.REDIS_HOST) return undefined;
  return `redis://${e.REDIS_HOST}:${e.REDIS_PORT}`;
}

/** What a command needs: `healthcheck` needs neither store, `migrate` needs no Redis. */
export type Requirement = 'database' | 'redis';

export function loadConfig(env: Env = process.env, requires: readonly Requirement[] = ['database', 'redis']) {
  const problems: string[] = [];
  const resolved = resolveSecretFiles(env, problems);
  const parsed = schema.safeParse(resolved);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // Never echo a value: secrets may be among them.
      problems.push(`${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  const databaseUrl = buildDatabaseUrl(e);
  const redisUrl = buildRedisUrl(e);
  if (!databaseUrl && requires.includes('database')) problems.push('DATABASE_URL: required (or POSTGRES_SERVER with POSTGRES_USER/PASSWORD/DB)');
  if (!redisUrl && requires.includes('redis')) problems.push('REDIS_URL: required (or REDIS_HOST/REDIS_PORT)');
  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    env: e.NODE_ENV,
    /** Empty only when the caller did not require it. */
    databaseUrl: databaseUrl ?? '',
    redisUrl: redisUrl ?? '',
    redisPrefix: e.REDIS_PREFIX,
    smtpUrl: e.SMTP_URL,
    smtpTimeoutMs: e.SMTP_TIMEOUT_MS,
    smtpPoolSize: e.SMTP_POOL_SIZE,
    mailFrom: e.MAIL_FROM,
    /** Absent only where no webhook secret is ever touched; the webhook code demands it. */
    encryptionKey: e.ENCRYPTION_KEY,
    bootstrapApiKey: e.BOOTSTRAP_API_KEY,
    host: e.HOST,
    port: e.PORT,
    workerHealthPort: e.WORKER_HEALTH_PORT,
    workerConcurrency: e.WORKER_CONCURRENCY,
    logLevel: e.LOG_LEVEL,
    runMigrations: e.RUN_MIGRATIONS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    shutdownDrainDelayMs: e.SHUTDOWN_DRAIN_DELAY_MS,
    jobLockMs: e.JOB_LOCK_MS,
    sweepIntervalMs: e.SWEEP_INTERVAL_MS,
    retention: Object.freeze({ days: e.RETENTION_DAYS, batch: e.RETENTION_BATCH_SIZE, pauseMs: e.RETENTION_PAUSE_MS }),
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    apiKeyCacheTtlMs: e.API_KEY_CACHE_TTL_MS,
    rateLimit: Object.freeze({ perSecond: e.RATE_LIMIT_PER_SECOND, burst: e.RATE_LIMIT_BURST }),
    email: Object.freeze({ maxAttempts: e.EMAIL_MAX_ATTEMPTS, retryBaseMs: e.EMAIL_RETRY_BASE_MS }),
    webhooks: Object.freeze({
      allowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryScheduleMs: Object.freeze(e.WEBHOOK_RETRY_SCHEDULE),
      concurrency: e.WEBHOOK_CONCURRENCY,
      endpointMaxInFlight: e.WEBHOOK_ENDPOINT_MAX_IN_FLIGHT,
      retryAfterMaxMs: e.WEBHOOK_RETRY_AFTER_MAX_MS,
    }),
    /** Unset: emails keep the From address as envelope sender and no report is tracked. */
    bounceDomain: e.BOUNCE_DOMAIN,
    dkim: e.DKIM_PRIVATE_KEY && e.DKIM_DOMAIN && e.DKIM_SELECTOR
      ? (Object.freeze({ ...e.DKIM_PRIVATE_KEY, domain: e.DKIM_DOMAIN, selector: e.DKIM_SELECTOR }) as DkimSettings)
      : undefined,
    inbound: Object.freeze({
      port: e.INBOUND_PORT,
      healthPort: e.INBOUND_HEALTH_PORT,
      maxMessageBytes: e.INBOUND_MAX_MESSAGE_BYTES,
      maxConnections: e.INBOUND_MAX_CONNECTIONS,
      socketTimeoutMs: e.INBOUND_SOCKET_TIMEOUT_MS,
      tls: e.INBOUND_TLS_CERT_FILE && e.INBOUND_TLS_KEY_FILE ? Object.freeze({ cert: e.INBOUND_TLS_CERT_FILE, key: e.INBOUND_TLS_KEY_FILE }) : undefined,
    }),
  });
}

export type Config = ReturnType<typeof loadConfig>;
