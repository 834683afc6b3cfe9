/**
 * Turns DATABASE_URL into node-postgres settings. Prisma's `?schema=name` parameter is honoured
 * (tests give every suite its own schema) by setting the session search_path, so the app's
 * queries, raw SQL and the migration runner all see the same schema.
 */
import type { PoolConfig } from 'pg';

export interface PgSettings {
  pool: PoolConfig;
  schema: string;
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function pgSettings(databaseUrl: string, extra: Partial<PoolConfig> = {}): PgSettings {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`DATABASE_URL: schema "${schema}" is not a plain identifier`);
  url.searchParams.delete('schema');
  return {
    schema,
    pool: {
      connectionString: url.toString(),
      options: `-c search_path="${schema}"`,
      // The wait for a connection (a new one, or a free one when the pool is exhausted) is
      // bounded by 4 s: a request that needs PostgreSQL gets its answer, 503 included, within
      // 5 s (issue 10). A new connection costs a SCRAM handshake and a backend fork, seconds on
      // a busy host, so idle connections are kept a minute (pg's default is 10 s): a pause in
      // traffic is not followed by a reconnect storm.
      connectionTimeoutMillis: 4_000,
      idleTimeoutMillis: 60_000,
      ...extra,
    },
  };
}

/**
 * Settings of a statement pool: the small pools on which a role's hot statements run as
 * prepared statements (claims, outcomes, the suppression check, inserts; container.ts). Every one
 * of them reaches its rows by key, so sequential scans are off for these sessions. PostgreSQL
 * keeps a prepared statement's generic plan until the table's statistics change; a plan made
 * while a table was still nearly empty (a new installation, and every benchmark) scans it, and
 * goes on scanning it whole as it grows, on every statement, until an ANALYZE: where autovacuum
 * is off, never (test/email/delivery-statements.test.ts shows it on a real plan). With this and
 * the key-driven statements (email/delivery-statements.ts), bench:email's PostgreSQL CPU an email
 * went 0.78–0.84 → 0.47–0.54 ms in alternating runs.
 */
export function statementPoolSettings(databaseUrl: string, max: number): PoolConfig {
  const { pool } = pgSettings(databaseUrl, { max });
  return { ...pool, options: `${pool.options} -c enable_seqscan=off` };
}
