/**
 * Where the test suites find their services. PostgreSQL and Redis are shared between runs and
 * suites, so every suite works in its own schema and its own Redis key prefix and removes them.
 */
export const TEST_DATABASE_NAME = 'easeemail_test';

/** Server URL without a database path: the admin connection for creating the test database. */
export const ADMIN_DATABASE_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const BASE_DATABASE_URL =
  process.env.DATABASE_URL ?? ADMIN_DATABASE_URL.replace(/\/[^/?]*(\?|$)/, `/${TEST_DATABASE_NAME}$1`);
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
