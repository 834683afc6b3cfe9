/**
 * Per-endpoint rate limit (deliveries per second), shared by every worker process through Redis,
 * in two parts (GCRA, each a "theoretical arrival time" key per endpoint, one atomic script):
 *
 * - **plan**: when a delivery is first seen it reserves a place in the endpoint's line, 1/rate
 *   after the previous one, and is parked in BullMQ's delayed set until then (no worker slot
 *   held, no attempt counted). A backlog of 2,000 thus comes back spread over 40 s at 50/s
 *   instead of all polling at once.
 * - **send**: the limit itself. Right before sending, a delivery takes the next send slot, 1/rate
 *   after the previous send. A slot at most MAX_SEND_WAIT_MS away is reserved and waited for
 *   in-process; a later one is not reserved, and the job is parked again for about that long.
 *   Jobs that come back late from parking (a busy worker, a slow promotion) therefore cannot
 *   go out in a bunch: the sends are at least 1/rate apart whatever the plan said.
 *
 * The clock is Redis's own (TIME), so worker clocks need not agree. Keys expire one second after
 * their last slot: idle endpoints leave nothing behind.
 */
import type { Redis } from 'ioredis';

/** A planned place this close is waited for in-process (a sleep) rather than by parking the job. */
export const MAX_INLINE_WAIT_MS = 25;
/** A send slot at most this far away is reserved and slept for; the gate waits as long (endpoint-gate.ts). */
export const MAX_SEND_WAIT_MS = 250;

// KEYS[1]: the endpoint's key; ARGV[1]: ms between slots; ARGV[2]: reserve only when the wait is at most this.
// Returns {reserved (0/1), wait ms}.
const SLOT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[2]) then return {0, math.ceil(wait)} end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat + interval - now) + 1000)
return {1, math.ceil(wait)}`;

export interface SlotAnswer {
  reserved: boolean;
  waitMs: number;
}

export interface EndpointRateLimiter {
  /** Reserves the delivery's place in the endpoint's line; resolves with the milliseconds until it. */
  plan(endpointId: string, perSecond: number): Promise<number>;
  /** Reserves the next send slot when it is at most MAX_SEND_WAIT_MS away; says how far it is either way. */
  take(endpointId: string, perSecond: number): Promise<SlotAnswer>;
}

type SlotCommand = (key: string, intervalMs: number, maxWaitMs: number) => Promise<[number, number]>;

export function createEndpointRateLimiter(deps: { redis: Redis; prefix: string }): EndpointRateLimiter {
  const { redis, prefix } = deps;
  redis.defineCommand('easeemailRateSlot', { numberOfKeys: 1, lua: SLOT_SCRIPT });
  const slot = (redis as unknown as { easeemailRateSlot: SlotCommand }).easeemailRateSlot.bind(redis);
  // Fractional milliseconds are kept (Redis numbers are doubles): 3/s is 333.33 ms apart, not 333.
  const interval = (perSecond: number) => 1000 / perSecond;
  return {
    async plan(endpointId, perSecond) {
      const [, waitMs] = await slot(`${prefix}:webhook-rate-plan:${endpointId}`, interval(perSecond), Number.MAX_SAFE_INTEGER);
      return Number(waitMs);
    },
    async take(endpointId, perSecond) {
      const [reserved, waitMs] = await slot(`${prefix}:webhook-rate-send:${endpointId}`, interval(perSecond), MAX_SEND_WAIT_MS);
      return { reserved: Number(reserved) === 1, waitMs: Number(waitMs) };
    },
  };
}
