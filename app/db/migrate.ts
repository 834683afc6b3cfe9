/**
 * The migration runner (DESIGN.md section 8). Applies prisma/migrations/<name>/migration.sql in
 * name order and records each in `_prisma_migrations` exactly as Prisma Migrate does, so
 * `prisma migrate status|deploy` stay interchangeable with it wherever Prisma's engine exists.
 *
 * - One runner at a time: a session-level advisory lock on Prisma's own lock key, so this runner
 *   and `prisma migrate deploy` also exclude each other.
 * - Each migration runs in a transaction; a failure is rolled back and recorded (finished_at null,
 *   logs set), and every later run refuses until an operator resolves it.
 * - Except a migration whose first line is `-- easeemail:no-transaction`: its statements run one
 *   by one, outside a transaction, for what a transaction would make block (CREATE INDEX
 *   CONCURRENTLY; a DO block that COMMITs between batches). Such a migration must be safe to run
 *   again after a failure (IF NOT EXISTS, idempotent updates): what committed before it stays.
 * - An applied migration whose file changed (checksum mismatch) is refused.
 * - `waitForMigrations` blocks until every migration this image ships is applied (init containers).
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { pgSettings } from './connection';

/** Prisma Migrate's advisory lock key (schema-engine: sql-migration-connector). */
const PRISMA_ADVISORY_LOCK_KEY = 72707369;
const NOTIFY_CHANNEL = 'easeemail_migrations';

export interface LocalMigration {
  name: string;
  sql: string;
  checksum: string;
}

const NO_TRANSACTION_MARKER = /^--\s*easeemail:no-transaction\s*$/m;
/** How often a runner retries the lock while another one holds it. */
const LOCK_POLL_MS = 250;

export function runsOutsideTransaction(m: LocalMigration): boolean {
  return NO_TRANSACTION_MARKER.test(m.sql.split('\n', 1)[0]);
}

/**
 * Splits a script into statements at top-level semicolons (not inside quotes, dollar quotes or
 * comments). Only no-transaction migrations are split: PostgreSQL runs a multi-statement string
 * as one implicit transaction, which is exactly what they must avoid.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const rest = sql.slice(i);
    if (rest.startsWith('--')) {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
    } else if (rest.startsWith('/*')) {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (sql[i] === "'" || sql[i] === '"') {
      const end = sql.indexOf(sql[i], i + 1);
      i = end === -1 ? sql.length : end + 1;
    } else if (sql[i] === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(rest)?.[0];
      if (tag) {
        const end = sql.indexOf(tag, i + tag.length);
        i = end === -1 ? sql.length : end + tag.length;
      } else i++;
    } else if (sql[i] === ';') {
      statements.push(sql.slice(start, i + 1));
      start = ++i;
    } else i++;
  }
  statements.push(sql.slice(start));
  // A piece with nothing but comments and white space is not a statement.
  return statements.filter((s) => s.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, '').trim() !== '');
}

interface AppliedRow {
  id: string;
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  started_at: Date;
}

export type MigrationState = 'applied' | 'pending' | 'failed' | 'modified';

export interface MigrationStatus {
  name: string;
  state: MigrationState;
  appliedAt?: Date;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export function readLocalMigrations(dir: string): LocalMigration[] {
  if (!existsSync(dir)) throw new MigrationError(`migrations folder not found: ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

const CREATE_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

async function connect(databaseUrl: string): Promise<{ client: Client; schema: string }> {
  const { pool, schema } = pgSettings(databaseUrl);
  const client = new Client(pool);
  // Without a listener a dropped connection would crash the process instead of failing the call.
  client.on('error', () => undefined);
  await client.connect();
  return { client, schema };
}

async function appliedRows(client: Client): Promise<AppliedRow[]> {
  const exists = await client.query(`SELECT to_regclass('"_prisma_migrations"') AS t`);
  if (!exists.rows[0].t) return [];
  const res = await client.query<AppliedRow>(
    `SELECT id, migration_name, checksum, finished_at, rolled_back_at, logs, started_at
       FROM "_prisma_migrations" ORDER BY started_at`,
  );
  return res.rows;
}

/** Compares the folder with the table; the same rules as Prisma's `migrate status`. */
export function compareMigrations(local: LocalMigration[], rows: AppliedRow[]): MigrationStatus[] {
  return local.map((m) => {
    const mine = rows.filter((r) => r.migration_name === m.name && r.rolled_back_at === null);
    const done = mine.find((r) => r.finished_at !== null);
    if (done) return { name: m.name, state: done.checksum === m.checksum ? 'applied' : 'modified', appliedAt: done.finished_at! };
    // A failure is recorded with its logs. An unfinished row without logs is a migration in
    // progress (seen by a waiter) or one whose runner died: its transaction was rolled back, so
    // it is simply still pending.
    if (mine.some((r) => r.logs !== null)) return { name: m.name, state: 'failed' };
    return { name: m.name, state: 'pending' };
  });
}

function refuseIfBroken(statuses: MigrationStatus[]): void {
  const failed = statuses.find((s) => s.state === 'failed');
  if (failed) {
    throw new MigrationError(
      `migration ${failed.name} failed earlier and is not resolved; fix the database, then mark it with ` +
        `"prisma migrate resolve --rolled-back ${failed.name}" (or delete its row from _prisma_migrations) and run migrate again`,
    );
  }
  const modified = statuses.find((s) => s.state === 'modified');
  if (modified) {
    throw new MigrationError(
      `migration ${modified.name} was changed after it was applied (checksum differs); never edit an applied migration, add a new one`,
    );
  }
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
}

export async function migrate(opts: { databaseUrl: string; dir: string; log?: (msg: string) => void }): Promise<MigrateResult> {
  const local = readLocalMigrations(opts.dir);
  const { client, schema } = await connect(opts.databaseUrl);
  const log = opts.log ?? (() => undefined);
  try {
    await takeLock(client);
    try {
      // Under the lock: CREATE SCHEMA IF NOT EXISTS is not safe against a concurrent twin.
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(CREATE_TABLE);
      // Read after taking the lock: another runner may have just applied everything.
      const statuses = compareMigrations(local, await appliedRows(client));
      refuseIfBroken(statuses);
      const pending = local.filter((m, i) => statuses[i].state === 'pending');
      for (const m of pending) {
        log(`applying ${m.name}`);
        await applyOne(client, m);
      }
      return { applied: pending.map((m) => m.name), alreadyApplied: local.length - pending.length };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Polls pg_try_advisory_lock instead of waiting in pg_advisory_lock: a runner blocked inside a
 * statement holds a snapshot, and CREATE INDEX CONCURRENTLY in the lock holder's migration waits
 * for every older snapshot to go away, so a blocked twin would deadlock it. A poll holds a
 * snapshot for microseconds.
 */
async function takeLock(client: Client): Promise<void> {
  for (;;) {
    const res = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [PRISMA_ADVISORY_LOCK_KEY]);
    if (res.rows[0].locked) return;
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}

async function applyOne(client: Client, m: LocalMigration): Promise<void> {
  const id = randomUUID();
  // The bookkeeping row is written outside the migration's transaction, so a failure stays recorded.
  await client.query(
    `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`,
    [id, m.checksum, m.name],
  );
  try {
    if (runsOutsideTransaction(m)) {
      for (const statement of splitStatements(m.sql)) await client.query(statement);
      await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
    } else {
      await client.query('BEGIN');
      await client.query(m.sql);
      await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
      await client.query('COMMIT');
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    const message = (err as Error).message;
    await client.query(`UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1`, [id, `${m.name} failed: ${message}`]);
    throw new MigrationError(`migration ${m.name} failed: ${message}`);
  }
  await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, m.name]).catch(() => undefined);
}

export async function migrationStatus(opts: { databaseUrl: string; dir: string }): Promise<MigrationStatus[]> {
  const local = readLocalMigrations(opts.dir);
  const { client } = await connect(opts.databaseUrl);
  try {
    return compareMigrations(local, await appliedRows(client));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Resolves once every local migration is applied; rejects on a failed or modified migration or
 * after `timeoutMs`. Wakes on the runner's NOTIFY and also polls, so it needs no cooperation.
 */
export async function waitForMigrations(opts: {
  databaseUrl: string;
  dir: string;
  timeoutMs: number;
  pollMs?: number;
  log?: (msg: string) => void;
}): Promise<void> {
  const local = readLocalMigrations(opts.dir);
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 1_000;
  let lastProblem = 'not checked yet';
  while (Date.now() < deadline) {
    let client: Client | undefined;
    try {
      ({ client } = await connect(opts.databaseUrl));
      let wake: () => void = () => undefined;
      client.on('notification', () => wake());
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      while (Date.now() < deadline) {
        const statuses = compareMigrations(local, await appliedRows(client));
        refuseIfBroken(statuses);
        const missing = statuses.filter((s) => s.state !== 'applied');
        if (missing.length === 0) return;
        lastProblem = `${missing.length} migration(s) not applied yet (first: ${missing[0].name})`;
        opts.log?.(lastProblem);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now())));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    } catch (err) {
      if (err instanceof MigrationError) throw err;
      lastProblem = `database unreachable: ${(err as Error).message}`;
      opts.log?.(lastProblem);
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    } finally {
      await client?.end().catch(() => undefined);
    }
  }
  throw new MigrationError(`timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for migrations: ${lastProblem}`);
}
