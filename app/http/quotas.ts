/**
 * Per-application quotas: how many emails an application may have accepted, and how many events
 * it may publish, per UTC minute and per UTC day (its settings emailQuotaPerMinute,
 * emailQuotaPerDay, eventQuotaPerMinute, eventQuotaPerDay; null = no quota, nothing counted).
 *
 * Units: one per email accepted (a batch of 100 counts 100) and one per event published. An email
 * to three recipients counts one: it is one message (one id, one row, one delivery job), which is
 * also what the per-request recipient limit already bounds. (SES's Max24HourSend counts
 * recipients instead; Resend and Postmark count emails.)
 *
 * Windows are fixed and on Redis's clock (TIME inside the script, so every api replica agrees):
 * the minute floor(t / 60) and the UTC day floor(t / 86400) of the Unix time t. A counter is
 * `<prefix>:quota:app:<applicationId>:<emails|events>:<minute|day>:<window index>` and expires two
 * windows after its last write.
 *
 * The check is part of the rate limiter's one script call (rate-limit.ts, CONSUME_SCRIPT below):
 * count the request against the rate limit; if it passes, look at every quota of the request's
 * kind and add the units to all of them only when all have room. A request that would exceed one
 * is refused whole and consumes nothing. A request that passes the check and then fails (invalid,
 * conflict, server error) or is answered by an idempotent replay gives its units back
 * (REFUND_SCRIPT, on that failure path only).
 */
import type { Redis } from 'ioredis';
import { wholeSecondsToWait } from '../errors';
import type { ApplicationSettings } from '../shared/application';

export type QuotaKind = 'emails' | 'events';
export type QuotaWindow = 'minute' | 'day';

export const QUOTA_WINDOW_SECONDS: Readonly<Record<QuotaWindow, number>> = { minute: 60, day: 86_400 };

/** Which application setting holds which quota. */
export const QUOTA_SETTINGS = {
  emails: { minute: 'emailQuotaPerMinute', day: 'emailQuotaPerDay' },
  events: { minute: 'eventQuotaPerMinute', day: 'eventQuotaPerDay' },
} as const satisfies Record<QuotaKind, Record<QuotaWindow, keyof ApplicationSettings>>;

export type QuotaSetting = (typeof QUOTA_SETTINGS)[QuotaKind][QuotaWindow];
export type QuotaSettings = Pick<ApplicationSettings, QuotaSetting>;

/** What a route counts against its application's quotas: the kind, and the units of a request (from its parsed, not yet validated, body). */
export interface QuotaUse {
  kind: QuotaKind;
  units(body: unknown): number;
}

/** A quota an application has set. */
export interface ActiveQuota {
  setting: QuotaSetting;
  kind: QuotaKind;
  window: QuotaWindow;
  limit: number;
}

/** The quotas an application has set, of one kind or of every kind; minute before day. */
export function activeQuotas(settings: QuotaSettings, kind?: QuotaKind): ActiveQuota[] {
  const kinds: QuotaKind[] = kind ? [kind] : ['emails', 'events'];
  const found: ActiveQuota[] = [];
  for (const k of kinds) {
    for (const window of ['minute', 'day'] as const) {
      const setting = QUOTA_SETTINGS[k][window];
      const limit = settings[setting];
      if (limit !== null && limit !== undefined) found.push({ setting, kind: k, window, limit });
    }
  }
  return found;
}

/** A quota's counter, without its window index (the scripts add it). */
export function quotaKey(prefix: string, applicationId: string, quota: Pick<ActiveQuota, 'kind' | 'window'>): string {
  return `${prefix}:quota:app:${applicationId}:${quota.kind}:${quota.window}`;
}

/** A quota's counter in one window, as a script answered it. */
export interface QuotaState extends ActiveQuota {
  used: number;
  remaining: number;
  /** Milliseconds until the window ends (and the counter starts again at 0). */
  resetMs: number;
  /** The window's index (its counter key's suffix). */
  index: number;
}

export function quotaState(quota: ActiveQuota, used: number, resetMs: number, index: number): QuotaState {
  return { ...quota, used, remaining: Math.max(0, quota.limit - used), resetMs, index };
}

/** What the headers show: the quota with the least room left (on a tie, the one that resets later). */
export function tightest(states: QuotaState[]): QuotaState {
  return states.reduce((a, b) => (b.remaining < a.remaining || (b.remaining === a.remaining && b.resetMs > a.resetMs) ? b : a));
}

/** X-Quota-* headers: the quota with the least room left after this request, and its name. */
export function quotaHeaders(state: QuotaState): Record<string, string> {
  return {
    'X-Quota-Name': state.setting,
    'X-Quota-Limit': String(state.limit),
    'X-Quota-Remaining': String(state.remaining),
    'X-Quota-Reset': String(wholeSecondsToWait(state.resetMs / 1000)),
  };
}

const UNIT = { emails: 'email', events: 'event' } as const;

export function describeQuota(q: ActiveQuota): string {
  return `${q.setting} (${q.limit} ${q.kind} per ${q.window === 'day' ? 'UTC day' : 'minute'})`;
}

/**
 * KEYS[1]: the rate-limit counter, in rate-limiter-flexible's layout and with its arithmetic (so
 * the application's routes with and without a quota share one bucket); KEYS[2..]: the quota
 * counters without their window index. ARGV[1]: the rate-limit window (s), ARGV[2]: its points,
 * ARGV[3]: the request's units, then per quota KEYS[i]: ARGV[2i] its limit, ARGV[2i+1] its window (s).
 * Returns {consumed, rate-limit ttl ms, admitted 1|0, then per quota: used, ms to reset, window index}
 * or, when the rate limit refuses, only the first three: quotas are then not looked at.
 */
export const CONSUME_SCRIPT = `
redis.call('set', KEYS[1], 0, 'EX', ARGV[1], 'NX')
local consumed = redis.call('incrby', KEYS[1], 1)
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('expire', KEYS[1], ARGV[1])
  ttl = 1000 * ARGV[1]
end
local out = {consumed, ttl, 0}
if consumed > tonumber(ARGV[2]) then return out end
local units = tonumber(ARGV[3])
local now = redis.call('time')
local seconds = tonumber(now[1])
local ms = seconds * 1000 + math.floor(tonumber(now[2]) / 1000)
local fits = true
local keys = {}
for i = 2, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local index = math.floor(seconds / window)
  local key = KEYS[i] .. ':' .. string.format('%d', index)
  local used = tonumber(redis.call('get', key) or '0')
  if used + units > limit then fits = false end
  keys[i - 1] = key
  table.insert(out, used)
  table.insert(out, (index + 1) * window * 1000 - ms)
  table.insert(out, index)
end
if fits then
  out[3] = 1
  for i = 1, #keys do
    out[1 + 3 * i] = redis.call('incrby', keys[i], units)
    redis.call('expire', keys[i], 2 * tonumber(ARGV[2 * i + 3]))
  end
end
return out
`;

/** KEYS: the counters (with their window index) a request added to; ARGV[1]: its units. Never below 0, never recreates an expired counter. */
export const REFUND_SCRIPT = `
for i = 1, #KEYS do
  if redis.call('exists', KEYS[i]) == 1 then
    if redis.call('decrby', KEYS[i], ARGV[1]) < 0 then redis.call('set', KEYS[i], 0, 'KEEPTTL') end
  end
end
return #KEYS
`;

/** KEYS: counters without their window index; ARGV[i]: KEYS[i]'s window (s). Returns per counter: used, ms to reset, window index. */
export const USAGE_SCRIPT = `
local now = redis.call('time')
local seconds = tonumber(now[1])
local ms = seconds * 1000 + math.floor(tonumber(now[2]) / 1000)
local out = {}
for i = 1, #KEYS do
  local window = tonumber(ARGV[i])
  local index = math.floor(seconds / window)
  table.insert(out, tonumber(redis.call('get', KEYS[i] .. ':' .. string.format('%d', index)) or '0'))
  table.insert(out, (index + 1) * window * 1000 - ms)
  table.insert(out, index)
end
return out
`;

/** Each takes the number of keys, the keys, then the arguments (EVALSHA's order). */
export interface QuotaCommands {
  easeemailQuotaConsume(...numKeysKeysArgs: (string | number)[]): Promise<number[]>;
  easeemailQuotaRefund(...numKeysKeysArgs: (string | number)[]): Promise<number>;
  easeemailQuotaUsage(...numKeysKeysArgs: (string | number)[]): Promise<number[]>;
}

/** The scripts as commands of `redis` (EVALSHA, loaded on first use by ioredis). */
export function quotaCommands(redis: Redis): QuotaCommands {
  const commands = redis as unknown as Partial<QuotaCommands>;
  if (!commands.easeemailQuotaConsume) {
    redis.defineCommand('easeemailQuotaConsume', { lua: CONSUME_SCRIPT });
    redis.defineCommand('easeemailQuotaRefund', { lua: REFUND_SCRIPT });
    redis.defineCommand('easeemailQuotaUsage', { lua: USAGE_SCRIPT });
  }
  return redis as unknown as QuotaCommands;
}

/** Units of a request that counts one (POST /v1/emails, POST /v1/events). */
export const ONE_UNIT = (): number => 1;

/**
 * Units of a batch body: its length, within [1, max]. The body is not validated yet: a body that
 * is not an array or is longer than the batch limit is refused by validation (and gives back
 * what it took); the bounds only keep it from taking more than a valid batch could.
 */
export function batchUnits(max: number): (body: unknown) => number {
  return (body) => (Array.isArray(body) ? Math.min(Math.max(body.length, 1), max) : 1);
}

export interface QuotaUsage {
  setting: QuotaSetting;
  counts: QuotaKind;
  window: QuotaWindow;
  limit: number;
  used: number;
  remaining: number;
  /** When the window ends (ISO 8601, UTC). */
  resetsAt: string;
}

/**
 * The counters of an application's quotas in their current windows (Redis's clock). Redis must
 * answer: while it is unreachable the script call fails at once (no offline queue) and the
 * request is a 503 naming Redis, as every route's (http/outages.ts; quotas are then not enforced).
 */
export async function readQuotaUsage(scripts: QuotaCommands, prefix: string, applicationId: string, settings: QuotaSettings): Promise<QuotaUsage[]> {
  const quotas = activeQuotas(settings);
  if (quotas.length === 0) return [];
  const answer = await scripts.easeemailQuotaUsage(
    quotas.length,
    ...quotas.map((q) => quotaKey(prefix, applicationId, q)),
    ...quotas.map((q) => QUOTA_WINDOW_SECONDS[q.window]),
  );
  return quotas.map((q, i) => {
    const state = quotaState(q, answer[3 * i], answer[3 * i + 1], answer[3 * i + 2]);
    // The window's end from its index (exact, on Redis's clock), not from this process's clock.
    const resetsAt = new Date((state.index + 1) * QUOTA_WINDOW_SECONDS[q.window] * 1000);
    return { setting: q.setting, counts: q.kind, window: q.window, limit: q.limit, used: state.used, remaining: state.remaining, resetsAt: resetsAt.toISOString() };
  });
}

export function exceededDetail(application: string, units: number, exceeded: QuotaState[], decisive: QuotaState): string {
  const unit = UNIT[decisive.kind];
  const each = exceeded.map((s) => `${describeQuota(s)}: ${s.used} used, ${s.remaining} left`).join('; ');
  const never = exceeded.filter((s) => units > s.limit);
  const hint =
    never.length > 0
      ? `; ${units} ${unit}s in one request can never fit ${never.map((s) => s.setting).join(' and ')}: send fewer at a time`
      : `; retry after ${wholeSecondsToWait(decisive.resetMs / 1000)} s, when ${decisive.setting}'s window resets`;
  return `quota exceeded for application "${application}": this request needs ${units} ${unit}${units === 1 ? '' : 's'}; ${each}${hint}`;
}
