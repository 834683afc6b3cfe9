/**
 * Per-application rate limiting in Redis (rate-limiter-flexible's RateLimiterRedis, one atomic Lua
 * call per request), shared by every api replica. All keys of one application share one bucket
 * (`<prefix>:ratelimit:app:<applicationId>`), sized by the application's rateLimitPerSecond /
 * rateLimitBurst, or RATE_LIMIT_PER_SECOND / RATE_LIMIT_BURST where those are unset: one busy
 * application cannot slow another, and minting more keys buys no more throughput.
 *
 * Policy: a window of W = BURST / PER_SECOND seconds (at least 1) allows BURST requests, so an
 * application averages PER_SECOND and may spend BURST at once after a quiet spell. Every answer carries
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
import type { ApplicationContext } from '../shared/application';

const FAIL_OPEN_LOG_INTERVAL_MS = 30_000;
const FIRST_CONNECT_WAIT_MS = 2_000;

export interface RateLimitOptions {
  redis: Redis;
  log: Logger;
  /** Redis key prefix (REDIS_PREFIX); counters live under `<prefix>:ratelimit:`. */
  prefix: string;
  /** The installation's defaults, for applications that set neither. */
  perSecond: number;
  burst: number;
}

export type RateLimitMiddleware = (ctx: Context, next: Next) => Promise<void>;

export function rateLimitPolicy(perSecond: number, burst: number): { points: number; windowSeconds: number } {
  const points = Math.max(burst, perSecond);
  return { points, windowSeconds: Math.max(1, Math.round(points / perSecond)) };
}

interface Limiter {
  limiter: RateLimiterRedis;
  points: number;
  windowSeconds: number;
  policy: string;
}

/**
 * Koa middleware limiting by the request's application (`ctx.state.application`); mount it after
 * authentication (`requireScope`). Requests without an authenticated key pass untouched; a key
 * acting on no application (a platform key on a platform route) is limited on its own with the
 * installation's defaults.
 */
export function createRateLimit(opts: RateLimitOptions): RateLimitMiddleware {
  // RateLimiterRedis fixes points and window per instance: one instance per distinct policy, a
  // handful in practice (applications mostly keep the defaults).
  const limiters = new Map<string, Limiter>();
  function limiterFor(perSecond: number, burst: number): Limiter {
    const { points, windowSeconds } = rateLimitPolicy(perSecond, burst);
    const policy = `${points};w=${windowSeconds}`;
    let found = limiters.get(policy);
    if (!found) {
      const limiter = new RateLimiterRedis({
        storeClient: opts.redis,
        keyPrefix: `${opts.prefix}:ratelimit`,
        points,
        duration: windowSeconds,
        // Do not queue commands while Redis is down: fail open at once instead of stalling requests.
        rejectIfRedisNotReady: true,
      });
      found = { limiter, points, windowSeconds, policy };
      limiters.set(policy, found);
    }
    return found;
  }
  let lastFailOpenLog = 0;
  // Right after start the connection may still be opening: wait for it briefly rather than let
  // the first requests through unlimited. Once it has been up, an outage fails open at once.
  let connected: Promise<unknown> | undefined =
    opts.redis.status === 'ready'
      ? undefined
      : Promise.race([once(opts.redis, 'ready').catch(() => undefined), new Promise((r) => setTimeout(r, FIRST_CONNECT_WAIT_MS).unref())]);
  void connected?.then(() => (connected = undefined));

  function setHeaders(ctx: Context, { policy, points }: Limiter, res: RateLimiterRes): Record<string, string> {
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
    const application = ctx.state.application as ApplicationContext | undefined;
    const bucket = application ? `app:${application.id}` : `key:${keyId}`;
    const limit = limiterFor(application?.settings.rateLimitPerSecond ?? opts.perSecond, application?.settings.rateLimitBurst ?? opts.burst);
    if (connected) await connected;
    let res: RateLimiterRes;
    try {
      res = await limit.limiter.consume(bucket);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        const whose = application ? `application "${application.name}"` : 'this API key';
        const err = new RateLimitedError(`rate limit of ${limit.points} requests per ${limit.windowSeconds} s for ${whose} exceeded`, rejection.msBeforeNext / 1000);
        Object.assign(err.headers, setHeaders(ctx, limit, rejection));
        throw err;
      }
      const now = Date.now();
      if (now - lastFailOpenLog >= FAIL_OPEN_LOG_INTERVAL_MS) {
        lastFailOpenLog = now;
        opts.log.warn({ err: rejection }, 'rate limiter unavailable (Redis); letting requests through');
      }
      return next();
    }
    setHeaders(ctx, limit, res);
    return next();
  };
}

/**
 * The API's limiter, built once by the api root, so every /v1 route counts against the same
 * per-application budget. It talks to Redis over its own connection with auto-pipelining: the checks of
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
