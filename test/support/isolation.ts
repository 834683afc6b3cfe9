/**
 * Per-suite isolation on the shared services: a fresh PostgreSQL schema with every migration
 * applied, a Redis key prefix, and cleanup of both.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { loadConfig, type Config, type Env } from '../../app/config';
import { createDb, type Db } from '../../app/db/client';
import { migrate } from '../../app/db/migrate';
import { MIGRATIONS_DIR } from '../../app/paths';
import { BASE_DATABASE_URL, REDIS_URL } from './env';

export function uniqueName(label: string): string {
  return `t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase().slice(0, 30)}_${randomBytes(4).toString('hex')}`;
}

export function schemaUrl(schema: string): string {
  const u = new URL(BASE_DATABASE_URL);
  u.searchParams.set('schema', schema);
  return u.toString();
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new Client({ connectionString: BASE_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** A migrated schema of its own. */
export async function createTestSchema(label: string): Promise<{ schema: string; databaseUrl: string; drop(): Promise<void> }> {
  const schema = uniqueName(label);
  const databaseUrl = schemaUrl(schema);
  await migrate({ databaseUrl, dir: MIGRATIONS_DIR });
  return { schema, databaseUrl, drop: () => dropSchema(schema) };
}

export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface TestEnvironment {
  schema: string;
  redisPrefix: string;
  /** The process environment a separately started `easeemail` process needs. */
  env: Env;
  config: Config;
  db: Db;
  cleanup(): Promise<void>;
}

/**
 * Everything a suite needs: own schema (migrated), own Redis prefix, a config built through the
 * real loader from an env (so separately spawned processes can get the very same settings).
 */
export async function createTestEnvironment(label: string, overrides: Env = {}): Promise<TestEnvironment> {
  const { schema, databaseUrl, drop } = await createTestSchema(label);
  const redisPrefix = uniqueName(label);
  const env: Env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_PREFIX: redisPrefix,
    PORT: '0',
    WORKER_HEALTH_PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    NODE_ENV: 'test',
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ...overrides,
  };
  const config = loadConfig(env);
  const db = createDb(databaseUrl, { poolSize: 4 });
  return {
    schema,
    redisPrefix,
    env,
    config,
    db,
    async cleanup() {
      await db.$disconnect();
      await drop();
      await deleteRedisPrefix(redisPrefix);
    },
  };
}
