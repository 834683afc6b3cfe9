/**
 * Runs once before all suites: makes sure PostgreSQL and Redis answer and the test database
 * exists. When they do not answer it stops at once and says how to provide them.
 */
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { ADMIN_DATABASE_URL, BASE_DATABASE_URL, REDIS_URL, TEST_DATABASE_NAME } from './env';

export default async function globalSetup(): Promise<void> {
  const problems: string[] = [];
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
    if (!process.env.DATABASE_URL) {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEST_DATABASE_NAME]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${TEST_DATABASE_NAME}"`).catch((err) => {
        if (!/already exists/.test(String(err.message))) throw err; // another run created it first
      });
    }
  } catch (err) {
    problems.push(`PostgreSQL (${new URL(ADMIN_DATABASE_URL).host}): ${(err as Error).message}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    problems.push(`Redis (${new URL(REDIS_URL).host}): ${(err as Error).message}`);
  } finally {
    redis.disconnect();
  }
  if (problems.length) {
    throw new Error(
      `The tests need PostgreSQL and Redis:\n  ${problems.join('\n  ')}\n` +
        'Start them locally (PostgreSQL 15 with trust auth for "postgres" on 127.0.0.1:5432, Redis 7 on 127.0.0.1:6379), ' +
        'or point TEST_ADMIN_DATABASE_URL / DATABASE_URL and REDIS_URL at running servers. .ci/run starts both on CI machines.',
    );
  }
  process.env.EASEEMAIL_TEST_DATABASE_URL = BASE_DATABASE_URL;
}
