/**
 * Per-API-key rate limiting in Redis (rate-limiter-flexible's RateLimiterRedis, one atomic Lua
 * call per request), shared by every api replica.
 *
 * Policy: a window of W = BURST / PER_SECOND seconds (at least 1) allows BURST requests, so a key
 * averages PER_SECOND and may spend BURST at once after a quiet spell. Every answer carries
 * RateLimit-Limit/-Remaining/-Reset and RateLimit-Policy (IETF draft-ietf-httpapi-ratelimit-headers);
 * a refusal is 429 problem+json with Retry-After.
 *
 * When Redis is unreachable the limiter fails open: requests pass (PostgreSQL, not Redis, decides
 * whether a request can be accepted) and a warning is logged at most every 30 s.
 */
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import type { Context, Next } from 'koa';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimitedError } from '../errors';
import type { Logger } from '../log';

const FAIL_OPEN_LOG_INTERVAL_MS = 30_000;
const FIRST_CONNECT_WAIT_MS = 2_000;

export interface RateLimitOptions {
  redis: Redis;
  log: Logger;
  /** Redis key prefix (REDIS_PREFIX); counters live under `<prefix>:ratelimit:`. */
  prefix: string;
  perSecond: number;
  burst: number;
}

export type RateLimitMiddleware = (ctx: Context, next: Next) => Promise<void>;

export function rateLimitPolicy(perSecond: number, burst: number): { points: number; windowSeconds: number } {
  const points = Math.max(burst, perSecond);
  return { points, windowSeconds: Math.max(1, Math.round(points / perSecond)) };
}

/**
 * Koa middleware limiting by `ctx.state.apiKey.id`; mount it after authentication
 * (`requireScope`). Requests without an authenticated key pass untouched.
 */
export function createRateLimit(opts: RateLimitOptions): RateLimitMiddleware {
  const { points, windowSeconds } = rateLimitPolicy(opts.perSecond, opts.burst);
  const limiter = new RateLimiterRedis({
    storeClient: opts.redis,
    keyPrefix: `${opts.prefix}:ratelimit`,
    points,
    duration: windowSeconds,
    // Do not queue commands while Redis is down: fail open at once instead of stalling requests.
    rejectIfRedisNotReady: true,
  });
  const policy = `${points};w=${windowSeconds}`;
  let lastFailOpenLog = 0;
  // Right after start the connection may still be opening: wait for it briefly rather than let
  // the first requests through unlimited. Once it has been up, an outage fails open at once.
  let connected: Promise<unknown> | undefined =
    opts.redis.status === 'ready'
      ? undefined
      : Promise.race([once(opts.redis, 'ready').catch(() => undefined), new Promise((r) => setTimeout(r, FIRST_CONNECT_WAIT_MS).unref())]);
  void connected?.then(() => (connected = undefined));

  function setHeaders(ctx: Context, res: RateLimiterRes): Record<string, string> {
    const headers = {
      'RateLimit-Policy': policy,
      'RateLimit-Limit': String(points),
      'RateLimit-Remaining': String(res.remainingPoints),
      'RateLimit-Reset': String(Math.max(0, Math.ceil(res.msBeforeNext / 1000))),
    };
    ctx.set(headers);
    return headers;
  }

  return async function rateLimit(ctx: Context, next: Next) {
    const keyId: string | undefined = ctx.state.apiKey?.id;
    if (!keyId) return next();
    if (connected) await connected;
    let res: RateLimiterRes;
    try {
      res = await limiter.consume(keyId);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        const err = new RateLimitedError(`rate limit of ${points} requests per ${windowSeconds} s for this API key exceeded`, rejection.msBeforeNext / 1000);
        Object.assign(err.headers, setHeaders(ctx, rejection));
        throw err;
      }
      const now = Date.now();
      if (now - lastFailOpenLog >= FAIL_OPEN_LOG_INTERVAL_MS) {
        lastFailOpenLog = now;
        opts.log.warn({ err: rejection }, 'rate limiter unavailable (Redis); letting requests through');
      }
      return next();
    }
    setHeaders(ctx, res);
    return next();
  };
}

/**
 * The API's limiter, built once by the api root, so every /v1 route counts against the same
 * per-key budget. It talks to Redis over its own connection with auto-pipelining: the checks of
 * all requests in one event-loop turn go out in a single write, instead of one write (a system
 * call) per request.
 */
export function createApiRateLimit(deps: {
  redis: Redis;
  log: Logger;
  lifecycle: { onShutdown(name: string, close: () => Promise<unknown> | unknown): void };
  prefix: string;
  perSecond: number;
  burst: number;
}): RateLimitMiddleware {
  const redis = deps.redis.duplicate({ enableAutoPipelining: true });
  redis.on('error', () => undefined); // an outage shows in /health/ready and in the fail-open warning
  deps.lifecycle.onShutdown('rate limiter redis', () => redis.quit().catch(() => redis.disconnect()));
  return createRateLimit({ redis, log: deps.log, prefix: deps.prefix, perSecond: deps.perSecond, burst: deps.burst });
}
