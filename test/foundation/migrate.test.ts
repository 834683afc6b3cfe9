/** The migration runner against real PostgreSQL: each case in its own schema. */
import { cpSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { compareMigrations, migrate, migrationStatus, readLocalMigrations, waitForMigrations } from '../../app/db/migrate';
import { MIGRATIONS_DIR } from '../../app/paths';
import { eventually } from '../support/eventually';
import { dropSchema, schemaUrl, uniqueName } from '../support/isolation';
import { runCli, startCli } from '../support/processes';

const schemas: string[] = [];
function freshSchema(label: string) {
  const schema = uniqueName(label);
  schemas.push(schema);
  return { schema, databaseUrl: schemaUrl(schema) };
}
const tempDirs: string[] = [];
afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

async function query<T extends object>(databaseUrl: string, sql: string): Promise<T[]> {
  const u = new URL(databaseUrl);
  const schema = u.searchParams.get('schema')!;
  u.searchParams.delete('schema');
  const client = new Client({ connectionString: u.toString(), options: `-c search_path="${schema}"` });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** A copy of the shipped migrations plus extra ones, for failure cases. */
function migrationsWith(extra: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'migrations-'));
  tempDirs.push(dir);
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

describe('migration runner', () => {
  const shipped = readLocalMigrations(MIGRATIONS_DIR);

  it('applies everything to an empty database, then does nothing the second time', async () => {
    const { databaseUrl } = freshSchema('mig_empty');
    const first = await migrate({ databaseUrl, dir: MIGRATIONS_DIR });
    expect(first.applied).toEqual(shipped.map((m) => m.name));
    const rows = await query<{ migration_name: string; checksum: string; finished_at: Date; applied_steps_count: number }>(
      databaseUrl,
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations"',
    );
    expect(rows).toEqual(shipped.map((m) => expect.objectContaining({ migration_name: m.name, checksum: m.checksum, finished_at: expect.any(Date), applied_steps_count: 1 })));
    expect(rows[0].checksum).toMatch(/^[0-9a-f]{64}$/);

    const second = await migrate({ databaseUrl, dir: MIGRATIONS_DIR });
    expect(second).toEqual({ applied: [], alreadyApplied: shipped.length });
    expect((await migrationStatus({ databaseUrl, dir: MIGRATIONS_DIR })).every((s) => s.state === 'applied')).toBe(true);
  });

  it('five runners started at once apply each migration exactly once', async () => {
    const { databaseUrl } = freshSchema('mig_race');
    const results = await Promise.all(Array.from({ length: 5 }, () => migrate({ databaseUrl, dir: MIGRATIONS_DIR })));
    expect(results.map((r) => r.applied.length).sort()).toEqual([0, 0, 0, 0, shipped.length]);
    const rows = await query<{ migration_name: string; n: string }>(databaseUrl, 'SELECT migration_name, count(*) AS n FROM "_prisma_migrations" GROUP BY 1 ORDER BY 1');
    expect(rows).toEqual(shipped.map((m) => ({ migration_name: m.name, n: '1' })));
  });

  it('a failing migration exits non-zero, is recorded, rolled back, and blocks later runs', async () => {
    const { databaseUrl } = freshSchema('mig_fail');
    const dir = migrationsWith({ '29990101000000_broken': 'CREATE TABLE half_done (id int);\nSELECT no_such_function();' });
    await expect(migrate({ databaseUrl, dir })).rejects.toThrow(/migration 29990101000000_broken failed: .*no_such_function/);
    const rows = await query<{ finished_at: Date | null; logs: string }>(databaseUrl, `SELECT finished_at, logs FROM "_prisma_migrations" WHERE migration_name = '29990101000000_broken'`);
    expect(rows).toEqual([{ finished_at: null, logs: expect.stringContaining('no_such_function') }]);
    // The transaction was rolled back: nothing half-applied remains.
    expect(await query(databaseUrl, `SELECT to_regclass('half_done') AS t`)).toEqual([{ t: null }]);
    await expect(migrate({ databaseUrl, dir })).rejects.toThrow(/29990101000000_broken failed earlier and is not resolved/);
    expect((await migrationStatus({ databaseUrl, dir })).find((s) => s.name === '29990101000000_broken')?.state).toBe('failed');
  });

  it('refuses when an applied migration was changed afterwards', async () => {
    const { databaseUrl } = freshSchema('mig_modified');
    const dir = migrationsWith({});
    await migrate({ databaseUrl, dir });
    appendFileSync(path.join(dir, shipped[0].name, 'migration.sql'), '\n-- edited\n');
    await expect(migrate({ databaseUrl, dir })).rejects.toThrow(new RegExp(`${shipped[0].name} was changed after it was applied`));
    await expect(waitForMigrations({ databaseUrl, dir, timeoutMs: 2_000 })).rejects.toThrow(/was changed after it was applied/);
  });

  it('--wait returns as soon as another process finishes migrating, and times out otherwise', async () => {
    const { databaseUrl } = freshSchema('mig_wait');
    await expect(waitForMigrations({ databaseUrl, dir: MIGRATIONS_DIR, timeoutMs: 1_500, pollMs: 200 })).rejects.toThrow(/timed out after 2 s waiting for migrations: .*not applied yet/);

    const waiter = startCli(['migrate', '--wait', '--timeout', '60'], { DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' });
    // It has listened and found the schema unmigrated (it logs that after its LISTEN), and waits on.
    await eventually(async () => (/not applied yet/.test(waiter.output()) ? true : undefined), 'the waiter to find the schema unmigrated');
    expect(waiter.child.exitCode).toBeNull();
    const run = await runCli(['migrate'], { DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent' });
    expect(run.code).toBe(0);
    const migratedAt = Date.now();
    expect(await waiter.exited).toBe(0);
    // Woken by NOTIFY (or its 1 s poll), not by the 60 s timeout.
    expect(Date.now() - migratedAt).toBeLessThan(5_000);
  });

  it('an unfinished row is in progress (pending) until the runner records a failure in its logs', () => {
    const m = shipped[0];
    const row = { id: 'x', migration_name: m.name, checksum: m.checksum, finished_at: null, rolled_back_at: null, logs: null, started_at: new Date() };
    expect(compareMigrations([m], [row])[0].state).toBe('pending');
    expect(compareMigrations([m], [{ ...row, logs: 'boom' }])[0].state).toBe('failed');
    expect(compareMigrations([m], [{ ...row, logs: 'boom' }, { ...row, id: 'y', finished_at: new Date() }])[0].state).toBe('applied');
  });

  it('the CLI reports status and exits non-zero on a failed migration', async () => {
    const { databaseUrl } = freshSchema('mig_cli');
    const before = await runCli(['migrate', 'status'], { DATABASE_URL: databaseUrl });
    expect(before.code).toBe(1);
    expect(before.output).toMatch(/pending\s+\d+_init/);
    expect((await runCli(['migrate'], { DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent' })).code).toBe(0);
    const after = await runCli(['migrate', 'status'], { DATABASE_URL: databaseUrl });
    expect(after).toMatchObject({ code: 0, output: expect.stringContaining('database schema is up to date') });
  });
});
