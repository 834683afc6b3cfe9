/**
 * Counts the statements a real pg pool is asked to run, for tests that promise batching: the
 * pool still runs every one against PostgreSQL.
 */
import type { Pool } from 'pg';

export function countStatements(pool: Pool): { count(): number; reset(): void } {
  let n = 0;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  pool.query = ((...args: unknown[]) => {
    n++;
    return query(...args);
  }) as Pool['query'];
  return { count: () => n, reset: () => void (n = 0) };
}
