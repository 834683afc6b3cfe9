#!/usr/bin/env node
/**
 * The `easeemail` command: one binary, role by command (DESIGN.md section 5).
 * Exit codes: 0 success, 1 failure, 2 bad usage or configuration.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type Requirement } from './config';
import { createDb, keepWasmOnBaselineCode } from './db/client';
import { migrate, migrationStatus, waitForMigrations } from './db/migrate';
import { DEFAULT_APPLICATION_NAME } from './applications/default';
import { createApplicationSchema } from './applications/schemas';
import { createApplicationService } from './applications/service';
import { createApiKeyService } from './auth/api-keys';
import { PLATFORM_SCOPE, SCOPES } from './auth/scopes';
import { parseWith } from './http/validate';
import { AppError } from './errors';
import { createLogger, redactUrlCredentials, type Logger } from './log';
import { MIGRATIONS_DIR } from './paths';
import { postgresTarget, redisTarget, waitFor } from './wait';

class UsageError extends Error {}

interface Command {
  summary: string;
  usage: string;
  options?: ParseArgsConfig['options'];
  run(args: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] }): Promise<number | 'running'>;
}

function config(requires?: Requirement[]) {
  return loadConfig(process.env, requires);
}

function logger(name: string, level?: string): Logger {
  return createLogger({ level: level ?? config([]).logLevel, name });
}

const seconds = (v: unknown, fallback: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--timeout must be a number of seconds, got "${String(v)}"`);
  return n;
};

const COMMANDS: Record<string, Command> = {
  api: {
    summary: 'serve the HTTP API (PORT, default 8000)',
    usage: 'easeemail api',
    async run() {
      // Loaded on demand (also startWorker below): `healthcheck` runs every few seconds and must stay cheap.
      const { startApi } = await import('./api');
      const cfg = config();
      const log = logger('api', cfg.logLevel);
      if (cfg.runMigrations) {
        const r = await migrate({ databaseUrl: cfg.databaseUrl, dir: MIGRATIONS_DIR, log: (m) => log.info(m) });
        log.info({ applied: r.applied }, 'migrations done (RUN_MIGRATIONS=true)');
      }
      (await startApi(cfg, log)).lifecycle.exitOnSignals();
      return 'running';
    },
  },
  worker: {
    summary: 'deliver queued emails and webhooks (health on WORKER_HEALTH_PORT, default 8001)',
    usage: 'easeemail worker',
    async run() {
      const { startWorker } = await import('./worker');
      const cfg = config();
      (await startWorker(cfg, logger('worker', cfg.logLevel))).lifecycle.exitOnSignals();
      return 'running';
    },
  },
  inbound: {
    summary: 'receive bounces and complaints for BOUNCE_DOMAIN over SMTP (INBOUND_PORT 2525; health on INBOUND_HEALTH_PORT 8002)',
    usage: 'easeemail inbound',
    async run() {
      const { startInbound } = await import('./inbound');
      const cfg = config();
      (await startInbound(cfg, logger('inbound', cfg.logLevel))).lifecycle.exitOnSignals();
      return 'running';
    },
  },
  migrate: {
    summary: 'apply database migrations; "migrate status" lists them; --wait blocks until applied',
    usage: 'easeemail migrate [status] [--wait [--timeout SECONDS]]',
    options: { wait: { type: 'boolean' }, timeout: { type: 'string' } },
    async run({ values, positionals }) {
      const cfg = config(['database']);
      const log = logger('migrate', cfg.logLevel);
      const sub = positionals[0];
      if (sub === 'status') {
        const statuses = await migrationStatus({ databaseUrl: cfg.databaseUrl, dir: MIGRATIONS_DIR });
        for (const s of statuses) console.log(`${s.state.padEnd(8)} ${s.name}${s.appliedAt ? `  (${s.appliedAt.toISOString()})` : ''}`);
        const pending = statuses.filter((s) => s.state !== 'applied').length;
        console.log(pending === 0 ? 'database schema is up to date' : `${pending} migration(s) not applied`);
        return pending === 0 ? 0 : 1;
      }
      if (sub !== undefined) throw new UsageError(`unknown migrate subcommand "${sub}"`);
      if (values.wait) {
        const timeout = seconds(values.timeout, 300);
        await waitForMigrations({ databaseUrl: cfg.databaseUrl, dir: MIGRATIONS_DIR, timeoutMs: timeout * 1000, log: (m) => log.info(m) });
        log.info('database schema is at the image head');
        return 0;
      }
      const r = await migrate({ databaseUrl: cfg.databaseUrl, dir: MIGRATIONS_DIR, log: (m) => log.info(m) });
      log.info({ applied: r.applied, alreadyApplied: r.alreadyApplied }, r.applied.length ? 'migrations applied' : 'nothing to migrate');
      return 0;
    },
  },
  wait: {
    summary: 'wait until PostgreSQL and Redis answer (bounded)',
    usage: 'easeemail wait [--timeout SECONDS] [--only postgres|redis]',
    options: { timeout: { type: 'string' }, only: { type: 'string' } },
    async run({ values }) {
      const only = values.only as string | undefined;
      if (only !== undefined && only !== 'postgres' && only !== 'redis') throw new UsageError('--only must be postgres or redis');
      const cfg = config(only === 'postgres' ? ['database'] : only === 'redis' ? ['redis'] : ['database', 'redis']);
      const targets = [];
      if (only !== 'redis') targets.push(postgresTarget(cfg.databaseUrl));
      if (only !== 'postgres') targets.push(redisTarget(cfg.redisUrl));
      const timeout = seconds(values.timeout, 60);
      await waitFor(targets, timeout * 1000, (m) => console.error(m));
      return 0;
    },
  },
  applications: {
    summary: 'manage applications (tenants): create NAME | list | disable NAME|ID | enable NAME|ID',
    usage:
      'easeemail applications create NAME [--description TEXT] [--json]\n  easeemail applications list [--json]\n  easeemail applications disable NAME|ID\n  easeemail applications enable NAME|ID\n\n' +
      'Settings (rate limit, default from, sender domains, retention, quotas) are changed with PATCH /v1/applications/{name} (README).',
    options: { description: { type: 'string' }, json: { type: 'boolean' } },
    async run({ values, positionals }) {
      const cfg = config(['database']);
      const db = createDb(cfg.databaseUrl, { poolSize: 1 });
      const applications = createApplicationService({ db, cacheTtlMs: 0 });
      try {
        const [sub, arg, extra] = positionals;
        if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
        if (sub === 'create') {
          if (!arg) throw new UsageError('create needs the application name');
          const input = parseWith(createApplicationSchema, { name: arg, ...(values.description !== undefined ? { description: values.description } : {}) }, 'arguments');
          const created = await applications.create(input);
          if (values.json) console.log(JSON.stringify(created));
          else console.log(`created application "${created.name}" (${created.id}); make its keys with: easeemail api-keys create --application ${created.name} --name NAME --scopes ...`);
          return 0;
        }
        if (sub === 'list') {
          const rows = await applications.list();
          if (values.json) console.log(JSON.stringify(rows));
          else for (const a of rows) console.log(`${a.id}  ${a.disabledAt ? 'disabled' : 'active  '}  ${a.name}${a.description ? `  (${a.description})` : ''}`);
          return 0;
        }
        if (sub === 'disable' || sub === 'enable') {
          if (!arg) throw new UsageError(`${sub} needs the application name or id`);
          const a = sub === 'disable' ? await applications.disable(arg) : await applications.enable(arg);
          console.log(`${sub}d application "${a.name}" (${a.id})${sub === 'disable' ? '; its keys stop working within API_KEY_CACHE_TTL_MS' : ''}`);
          return 0;
        }
        throw new UsageError('applications needs create, list, disable or enable');
      } finally {
        await db.$disconnect();
      }
    },
  },
  'api-keys': {
    summary: 'manage API keys: create --name NAME --scopes a,b [--application NAME|ID] | list | revoke ID|PREFIX',
    usage:
      `easeemail api-keys create --name NAME --scopes SCOPE[,SCOPE...] [--application NAME|ID] [--json]\n  easeemail api-keys list [--application NAME|ID] [--json]\n  easeemail api-keys revoke ID|PREFIX\n\n` +
      `A key belongs to one application (--application; "${DEFAULT_APPLICATION_NAME}" when omitted), except a platform key ` +
      `(--scopes ${PLATFORM_SCOPE}, no --application), which manages applications and keys and acts on an application named per request with X-Application.\n\nScopes: ${SCOPES.join(', ')}`,
    options: { name: { type: 'string' }, scopes: { type: 'string', multiple: true }, application: { type: 'string' }, json: { type: 'boolean' } },
    async run({ values, positionals }) {
      const cfg = config(['database']);
      const db = createDb(cfg.databaseUrl, { poolSize: 1 });
      const keys = createApiKeyService({ db });
      const applications = createApplicationService({ db, cacheTtlMs: 0 });
      const application = values.application as string | undefined;
      try {
        const [sub, arg] = positionals;
        if (sub === 'create') {
          if (!values.name) throw new UsageError('--name is required');
          const scopes = ((values.scopes as string[] | undefined) ?? []).flatMap((s) => s.split(/[,\s]+/)).filter(Boolean);
          if (scopes.length === 0) throw new UsageError(`--scopes is required (${SCOPES.join(', ')})`);
          const platform = scopes.includes(PLATFORM_SCOPE);
          if (platform && application !== undefined) throw new UsageError(`a platform key (${PLATFORM_SCOPE}) belongs to no application: drop --application`);
          const app = platform ? undefined : await applications.get(application ?? DEFAULT_APPLICATION_NAME);
          const { key, summary } = await keys.create({ name: String(values.name), scopes, applicationId: app ? app.id : null });
          if (values.json) console.log(JSON.stringify({ ...summary, application: app?.name ?? null, key }));
          else {
            const owner = app ? `of application "${app.name}"` : 'for the platform (no application)';
            console.error(`created API key "${summary.name}" (${summary.id}) ${owner} with scopes ${summary.scopes.join(', ')}; it is shown only once:`);
            console.log(key);
          }
          return 0;
        }
        if (sub === 'list') {
          const app = application !== undefined ? await applications.get(application) : undefined;
          const names = new Map((await applications.list()).map((a) => [a.id, a.name]));
          const rows = await keys.list({ applicationId: app?.id });
          if (values.json) console.log(JSON.stringify(rows.map((k) => ({ ...k, application: k.applicationId ? names.get(k.applicationId) : null }))));
          else
            for (const k of rows) {
              const owner = k.applicationId ? names.get(k.applicationId) : '(platform)';
              console.log(`${k.id}  ${k.prefix}…  ${k.revokedAt ? 'revoked' : 'active '}  ${owner}  ${k.name}  [${k.scopes.join(', ')}]`);
            }
          return 0;
        }
        if (sub === 'revoke') {
          if (!arg) throw new UsageError('revoke needs the key id or its prefix');
          const k = await keys.revoke(arg);
          console.log(`revoked ${k.id} (${k.name})`);
          return 0;
        }
        throw new UsageError(`api-keys needs create, list or revoke`);
      } finally {
        await db.$disconnect();
      }
    },
  },
  dkim: {
    summary: 'DKIM keys: "dkim keygen" prints a new private key, "dkim dns" the TXT record of the configured one',
    usage: 'easeemail dkim keygen [--type rsa|ed25519]\n  easeemail dkim dns   (reads DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY[_FILE])',
    options: { type: { type: 'string' } },
    async run({ values, positionals }) {
      const { dkimDnsRecord, generateDkimKey } = await import('./deliverability/dkim');
      const sub = positionals[0];
      if (sub === 'keygen') {
        const type = (values.type as string | undefined) ?? 'rsa';
        if (type !== 'rsa' && type !== 'ed25519') throw new UsageError('--type must be rsa or ed25519');
        process.stdout.write(generateDkimKey(type));
        console.error('store it as the DKIM_PRIVATE_KEY secret, then run "easeemail dkim dns" for the record to publish');
        return 0;
      }
      if (sub === 'dns') {
        const { dkim } = config([]);
        if (!dkim) throw new UsageError('set DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY (or DKIM_PRIVATE_KEY_FILE) first');
        console.log(dkimDnsRecord(dkim).zoneLine);
        return 0;
      }
      throw new UsageError('dkim needs keygen or dns');
    },
  },
  healthcheck: {
    summary: "probe this container's role on its live endpoint; exit 0 when healthy (for HEALTHCHECK)",
    usage: 'easeemail healthcheck [api|worker|inbound] [--ready] [--timeout SECONDS]',
    options: { ready: { type: 'boolean' }, timeout: { type: 'string' } },
    async run({ values, positionals }) {
      const role = positionals[0] ?? 'api';
      if (role !== 'api' && role !== 'worker' && role !== 'inbound') throw new UsageError('healthcheck role must be api, worker or inbound');
      const cfg = config([]);
      const port = role === 'api' ? cfg.port : role === 'worker' ? cfg.workerHealthPort : cfg.inbound.healthPort;
      const path = values.ready ? '/health/ready' : '/health/live';
      try {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(seconds(values.timeout, 3) * 1000) });
        if (res.ok) return 0;
        console.error(`${role} ${path}: HTTP ${res.status}`);
      } catch (err) {
        console.error(`${role} ${path}: ${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message}`);
      }
      return 1;
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'Usage: easeemail <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "easeemail <command> --help" for a command. Configuration comes from the environment (see README).',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number | 'running'> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${command.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: command.options ?? {}, allowPositionals: true, strict: true });
    return await command.run({ values: values as Record<string, string | boolean | string[] | undefined>, positionals });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(err as Error).message}\n\nUsage: ${command.usage}`);
      return 2;
    }
    if (err instanceof AppError) {
      console.error(err.message);
      return 1;
    }
    console.error(`easeemail ${name}: ${redactUrlCredentials((err as Error).message)}`);
    return 1;
  }
}

if (require.main === module) {
  // Process-wide V8 flags belong to the process's entry point, not to importing the database module.
  keepWasmOnBaselineCode();
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== 'running') process.exit(code);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
