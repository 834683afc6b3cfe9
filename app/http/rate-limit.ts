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
 * Quotas (./quotas.ts) ride on the same call: on a route that counts against a quota (the accept
 * routes, `counting(use)`), for an application that has set one of that kind, the request goes
 * through one script that does the rate limit's arithmetic on the same key and then the quota
 * check; an application without such a quota takes the plain rate-limit call. Either way one
 * EVALSHA per request.
 *
 * When Redis is unreachable the limiter fails open, quotas included: requests pass (PostgreSQL,
 * not Redis, decides whether a request can be accepted) and a warning is logged at most every 30 s.
 */
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import type { Context, Next } from 'koa';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { QuotaExceededError, RateLimitedError } from '../errors';
import { IDEMPOTENT_REPLAY_HEADER } from './idempotency';
import type { Logger } from '../log';
import type { ApplicationContext } from '../shared/application';
import {
  activeQuotas,
  exceededDetail,
  QUOTA_WINDOW_SECONDS,
  quotaCommands,
  quotaHeaders,
  quotaKey,
  quotaState,
  readQuotaUsage,
  tightest,
  type QuotaSettings,
  type QuotaUsage,
  type QuotaUse,
} from './quotas';

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

export interface RateLimit {
  /** Counts the request against its application's rate limit. */
  requests: RateLimitMiddleware;
  /** The same, plus the application's quotas of `use.kind` when it has set any (one script call either way). */
  counting(use: QuotaUse): RateLimitMiddleware;
  /** An application's quota counters in their current windows (only the quotas it has set). */
  usage(applicationId: string, settings: QuotaSettings): Promise<QuotaUsage[]>;
}

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
export function createRateLimit(opts: RateLimitOptions): RateLimit {
  // RateLimiterRedis fixes points and window per instance: one instance per distinct policy, a
  // handful in practice (applications mostly keep the defaults).
  const limiters = new Map<string, Limiter>();
  const keyPrefix = `${opts.prefix}:ratelimit`;
  function limiterFor(perSecond: number, burst: number): Limiter {
    const { points, windowSeconds } = rateLimitPolicy(perSecond, burst);
    const policy = `${points};w=${windowSeconds}`;
    let found = limiters.get(policy);
    if (!found) {
      const limiter = new RateLimiterRedis({
        storeClient: opts.redis,
        keyPrefix,
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
  const scripts = quotaCommands(opts.redis);
  let lastFailOpenLog = 0;
  // Right after start the connection may still be opening: wait for it briefly rather than let
  // the first requests through unlimited. Once it has been up, an outage fails open at once.
  let connected: Promise<unknown> | undefined =
    opts.redis.status === 'ready'
      ? undefined
      : Promise.race([once(opts.redis, 'ready').catch(() => undefined), new Promise((r) => setTimeout(r, FIRST_CONNECT_WAIT_MS).unref())]);
  void connected?.then(() => (connected = undefined));

  function setHeaders(ctx: Context, { policy, points }: Limiter, res: Pick<RateLimiterRes, 'remainingPoints' | 'msBeforeNext'>): Record<string, string> {
    const headers = {
      'RateLimit-Policy': policy,
      'RateLimit-Limit': String(points),
      'RateLimit-Remaining': String(res.remainingPoints),
      'RateLimit-Reset': String(Math.max(0, Math.ceil(res.msBeforeNext / 1000))),
    };
    ctx.set(headers);
    return headers;
  }

  function rateLimited(ctx: Context, limit: Limiter, res: Pick<RateLimiterRes, 'remainingPoints' | 'msBeforeNext'>, application: ApplicationContext | undefined): RateLimitedError {
    const whose = application ? `application "${application.name}"` : 'this API key';
    const err = new RateLimitedError(`rate limit of ${limit.points} requests per ${limit.windowSeconds} s for ${whose} exceeded`, res.msBeforeNext / 1000);
    Object.assign(err.headers, setHeaders(ctx, limit, res));
    return err;
  }

  function failOpen(err: unknown): void {
    const now = Date.now();
    if (now - lastFailOpenLog >= FAIL_OPEN_LOG_INTERVAL_MS) {
      lastFailOpenLog = now;
      opts.log.warn({ err }, 'rate limiter unavailable (Redis); letting requests through');
    }
  }

  /** The bucket a request counts against: its application's, or (without one) its API key's. */
  function bucketOf(application: ApplicationContext | undefined, keyId: string): string {
    return application ? `app:${application.id}` : `key:${keyId}`;
  }

  function limitOf(application: ApplicationContext | undefined): Limiter {
    return limiterFor(application?.settings.rateLimitPerSecond ?? opts.perSecond, application?.settings.rateLimitBurst ?? opts.burst);
  }

  async function requests(ctx: Context, next: Next): Promise<void> {
    const keyId: string | undefined = ctx.state.apiKey?.id;
    if (!keyId) return next();
    const application = ctx.state.application as ApplicationContext | undefined;
    const bucket = bucketOf(application, keyId);
    const limit = limitOf(application);
    if (connected) await connected;
    let res: RateLimiterRes;
    try {
      res = await limit.limiter.consume(bucket);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) throw rateLimited(ctx, limit, rejection, application);
      failOpen(rejection);
      return next();
    }
    setHeaders(ctx, limit, res);
    return next();
  }

  function counting(use: QuotaUse): RateLimitMiddleware {
    return async function rateLimitAndQuota(ctx: Context, next: Next): Promise<void> {
      const application = ctx.state.application as ApplicationContext | undefined;
      const quotas = application && ctx.state.apiKey?.id ? activeQuotas(application.settings, use.kind) : [];
      if (!application || quotas.length === 0) return requests(ctx, next);
      const limit = limitOf(application);
      const units = use.units(ctx.request.body);
      const keys = quotas.map((q) => quotaKey(opts.prefix, application.id, q));
      if (connected) await connected;
      let answer: number[];
      try {
        if (opts.redis.status !== 'ready') throw new Error('Redis connection is not ready');
        answer = await scripts.easeemailQuotaConsume(
          1 + keys.length,
          // The same key as the plain limiter's for this bucket, so both count against one balance.
          limit.limiter.getKey(bucketOf(application, ctx.state.apiKey.id)),
          ...keys,
          limit.windowSeconds,
          limit.points,
          units,
          ...quotas.flatMap((q) => [q.limit, QUOTA_WINDOW_SECONDS[q.window]]),
        );
      } catch (err) {
        failOpen(err);
        return next();
      }
      const [consumed, ttl, admitted] = answer;
      const rate = { remainingPoints: Math.max(limit.points - consumed, 0), msBeforeNext: ttl };
      if (consumed > limit.points) throw rateLimited(ctx, limit, rate, application);
      setHeaders(ctx, limit, rate);
      const states = quotas.map((q, i) => quotaState(q, answer[3 + 3 * i], answer[4 + 3 * i], answer[5 + 3 * i]));

      if (admitted !== 1) {
        const exceeded = states.filter((s) => s.used + units > s.limit);
        // Retry-After: when the last of the exceeded quotas has room again.
        const decisive = exceeded.reduce((a, b) => (b.resetMs > a.resetMs ? b : a));
        const err = new QuotaExceededError(exceededDetail(application.name, units, exceeded, decisive), decisive.resetMs / 1000);
        Object.assign(err.headers, quotaHeaders(decisive));
        throw err;
      }
      ctx.set(quotaHeaders(tightest(states)));

      let kept = false;
      try {
        await next();
        kept = ctx.status >= 200 && ctx.status < 300 && ctx.response.get(IDEMPOTENT_REPLAY_HEADER) !== 'true';
      } finally {
        if (!kept) {
          // Nothing was accepted (or it was accepted before): give the units back.
          try {
            await scripts.easeemailQuotaRefund(keys.length, ...states.map((s, i) => `${keys[i]}:${s.index}`), units);
          } catch (err) {
            failOpen(err);
          }
          ctx.set(quotaHeaders(tightest(states.map((s) => quotaState(s, Math.max(0, s.used - units), s.resetMs, s.index)))));
        }
      }
    };
  }

  return {
    requests,
    counting,
    usage: (applicationId, settings) => readQuotaUsage(scripts, opts.prefix, applicationId, settings),
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
}): RateLimit {
  const redis = deps.redis.duplicate({ enableAutoPipelining: true });
  redis.on('error', () => undefined); // an outage shows in /health/ready and in the fail-open warning
  deps.lifecycle.onShutdown('rate limiter redis', () => redis.quit().catch(() => redis.disconnect()));
  return createRateLimit({ redis, log: deps.log, prefix: deps.prefix, perSecond: deps.perSecond, burst: deps.burst });
}
