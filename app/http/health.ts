/**
 * Health endpoints, shared by the api and the worker's health server:
 * - /health/live: the process runs (no dependency checks, so a database outage never restarts pods);
 * - /health/ready and /health: PostgreSQL and Redis answer within a short timeout, and the
 *   process is not shutting down; 503 with the reasons otherwise.
 */
import Router, { type RouterContext } from '@koa/router';
import type { Redis } from 'ioredis';
import type { Db } from '../db/client';
import { withTimeout } from '../shared/timeout';
import { evictionPolicy, evictionWarning } from '../shared/redis-policy';

export const HEALTH_CHECK_TIMEOUT_MS = 2_000;

export interface ReadinessSources {
  db: Db;
  redis: Redis;
  isShuttingDown: () => boolean;
}

async function check(fn: () => Promise<unknown>, what: string): Promise<string | undefined> {
  try {
    await withTimeout(fn(), HEALTH_CHECK_TIMEOUT_MS, what);
    return undefined;
  } catch (err) {
    // Driver messages may quote host names but never credentials; keep them short.
    return String((err as Error).message ?? err).split('\n')[0].slice(0, 200) || 'unreachable';
  }
}

export async function readiness(src: ReadinessSources) {
  if (src.isShuttingDown()) {
    return { ok: false, body: { status: 'shutting_down', database: 'unknown', redis: 'unknown' } };
  }
  let policy: string | undefined;
  const [dbError, redisError] = await Promise.all([
    check(() => src.db.$queryRawUnsafe('SELECT 1'), 'PostgreSQL'),
    check(async () => {
      await src.redis.ping();
      policy = await evictionPolicy(src.redis);
    }, 'Redis'),
  ]);
  const ok = !dbError && !redisError;
  const body: Record<string, unknown> = { status: ok ? 'ready' : 'unavailable', database: dbError ? 'error' : 'ok', redis: redisError ? 'error' : 'ok' };
  if (!redisError) body.redisMaxmemoryPolicy = policy ?? 'unknown';
  // Shown, not failed: the service works, an evicted job only waits for the sweep.
  const warning = evictionWarning(policy);
  if (warning) body.warnings = [warning];
  if (!ok) body.errors = { ...(dbError ? { database: dbError } : {}), ...(redisError ? { redis: redisError } : {}) };
  return { ok, body };
}

export function healthRouter(src: ReadinessSources): Router {
  const router = new Router();
  router.get('/health/live', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'alive' };
  });
  const ready = async (ctx: RouterContext) => {
    const { ok, body } = await readiness(src);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = ok ? 200 : 503;
    ctx.body = body;
  };
  router.get('/health/ready', ready);
  router.get('/health', ready);
  return router;
}
