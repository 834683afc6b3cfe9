import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from './config';
import { problemsOf } from './config.fixture';

const base = { DATABASE_URL: 'postgresql://u:p@db:5432/app', REDIS_URL: 'redis://redis:6379' };


describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({ port: 8000, workerHealthPort: 8001, logLevel: 'info', runMigrations: false, shutdownTimeoutMs: 25_000 });
    expect(c.webhooks.retryScheduleMs).toEqual([5, 300, 1800, 7200, 18000, 36000, 36000].map((s) => s * 1000));
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('paces retention from RETENTION_BATCH_SIZE and RETENTION_PAUSE_MS (defaults 500 and 100 ms; a pause may be 0)', () => {
    expect(loadConfig(base).retention).toEqual({ days: 30, batch: 500, pauseMs: 100 });
    expect(loadConfig({ ...base, RETENTION_DAYS: '7', RETENTION_BATCH_SIZE: '200', RETENTION_PAUSE_MS: '0' }).retention).toEqual({ days: 7, batch: 200, pauseMs: 0 });
    const problems = problemsOf({ ...base, RETENTION_BATCH_SIZE: '0', RETENTION_PAUSE_MS: '-5' });
    expect(problems.map((p) => p.split(':')[0])).toEqual(expect.arrayContaining(['RETENTION_BATCH_SIZE', 'RETENTION_PAUSE_MS']));
  });

  it('lists every bad key at once, without echoing values', () => {
    const problems = problemsOf({ ...base, PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://secret-pass@x/y', RUN_MIGRATIONS: 'maybe' });
    const keys = problems.map((p) => p.split(':')[0]);
    expect(keys).toEqual(expect.arrayContaining(['PORT', 'LOG_LEVEL', 'DATABASE_URL', 'RUN_MIGRATIONS']));
    expect(problems.join('\n')).not.toContain('secret-pass');
  });

  it('reads every secret from X_FILE', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'db');
    writeFileSync(file, 'postgresql://from:file@db/app\n');
    const keyFile = path.join(dir, 'key');
    writeFileSync(keyFile, 'a'.repeat(64));
    const c = loadConfig({ REDIS_URL: base.REDIS_URL, DATABASE_URL_FILE: file, ENCRYPTION_KEY_FILE: keyFile });
    expect(c.databaseUrl).toBe('postgresql://from:file@db/app');
    expect(c.encryptionKey).toEqual(Buffer.alloc(32, 0xaa));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses X and X_FILE together, and unreadable files', () => {
    const problems = problemsOf({ ...base, DATABASE_URL_FILE: '/nonexistent/db', REDIS_URL_FILE: '/nonexistent/redis' });
    expect(problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^DATABASE_URL: set both/), expect.stringMatching(/^REDIS_URL: set both/)]),
    );
    expect(problemsOf({ REDIS_URL: base.REDIS_URL, DATABASE_URL_FILE: '/nonexistent/db' })).toEqual([
      expect.stringMatching(/^DATABASE_URL_FILE: cannot read \/nonexistent\/db \(ENOENT\)/),
    ]);
  });

  it('builds URLs from the POSTGRES_* and REDIS_HOST/PORT fallbacks', () => {
    const c = loadConfig({ POSTGRES_SERVER: 'pg', POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'p@ss word', POSTGRES_DB: 'mail', REDIS_HOST: 'cache', REDIS_PORT: '6380' });
    expect(c.databaseUrl).toBe('postgresql://app:p%40ss%20word@pg:5432/mail');
    expect(c.redisUrl).toBe('redis://cache:6380');
  });

  it('requires the stores a command needs, and only those', () => {
    expect(problemsOf({})).toEqual([expect.stringMatching(/^DATABASE_URL: required/), expect.stringMatching(/^REDIS_URL: required/)]);
    expect(loadConfig({}, []).port).toBe(8000);
    expect(loadConfig({ DATABASE_URL: base.DATABASE_URL }, ['database']).redisUrl).toBe('');
  });

  it('accepts a 32-byte encryption key as hex or base64 and refuses other lengths', () => {
    expect(loadConfig({ ...base, ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') }).encryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(problemsOf({ ...base, ENCRYPTION_KEY: 'c2hvcnQ=' })).toEqual([expect.stringMatching(/^ENCRYPTION_KEY: must be 32 bytes/)]);
  });

  it('refuses a job lock that does not outlast the delivery timeouts', () => {
    expect(problemsOf({ ...base, JOB_LOCK_MS: '10000', SMTP_TIMEOUT_MS: '30000' })).toEqual([expect.stringMatching(/^JOB_LOCK_MS: must exceed/)]);
  });

  it('parses booleans and the webhook retry schedule strictly', () => {
    expect(loadConfig({ ...base, RUN_MIGRATIONS: 'true', WEBHOOK_RETRY_SCHEDULE: '0.1,2' })).toMatchObject({ runMigrations: true, webhooks: { retryScheduleMs: [100, 2000] } });
    expect(problemsOf({ ...base, WEBHOOK_RETRY_SCHEDULE: '5,,10' })).toEqual([expect.stringMatching(/^WEBHOOK_RETRY_SCHEDULE:/)]);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ ...base, PORT: '', BOOTSTRAP_API_KEY: '' }).port).toBe(8000);
  });
});
