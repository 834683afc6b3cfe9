/**
 * Per-endpoint isolation: at most `limit` deliveries to one endpoint are in flight across all
 * workers, so an endpoint that hangs until the timeout holds `limit` delivery slots and no more;
 * every other endpoint keeps the rest of the worker's concurrency.
 *
 * BullMQ's open-source edition has no per-group concurrency, so this is built from three parts:
 * - a Redis lease set per endpoint (sorted set: member = one attempt, score = lease expiry) taken
 *   atomically by Lua; a worker killed mid-attempt leaks nothing because leases expire after the
 *   attempt timeout plus a margin;
 * - an in-process waiting room, so a busy but fast endpoint does not bounce its jobs back to the
 *   queue: a job waits here (at most `limit` of them per endpoint) when the expected wait is
 *   short (MAX_LOCAL_WAIT_MS);
 * - otherwise `acquire` answers "come back in N ms" and the processor parks the job in BullMQ's
 *   delayed set (no attempt is counted), freeing the worker slot. Parked jobs form a virtual
 *   queue: each is due one slot interval (time per attempt / limit) after the previous one, so a
 *   backlog for a slow endpoint comes back at about the pace the endpoint can take it, instead
 *   of all at once, again and again.
 *
 * The time per attempt is the endpoint's observed latency (moving average), or the age of its
 * oldest attempt in flight when that is larger (a hanging endpoint is recognized before its
 * first timeout).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A job waits in-process only when its expected wait is at most this long. */
export const MAX_LOCAL_WAIT_MS = 250;
/** While waiting, the Redis lease set is polled this often (slots freed by other workers). */
const POLL_MS = 25;
/** Latency assumed for an endpoint not seen yet. */
const INITIAL_LATENCY_MS = 50;
const EWMA_WEIGHT = 0.3;
const MIN_PARK_MS = 100;
const MAX_PARK_MS = 30_000;
/** A parked job that did not come back this long after its due time is forgotten. */
const PARKED_FORGET_MS = 60_000;

const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`;

export type GateAnswer = { release: () => void } | { retryInMs: number };

export interface EndpointGate {
  /** `ticket` names the job, so a parked job keeps its place when it comes back. */
  acquire(endpointId: string, ticket: string): Promise<GateAnswer>;
  /**
   * For a job coming back from parking: parks it again at once when its endpoint is still full
   * in this process, so the caller can skip reading the delivery. Undefined otherwise.
   */
  reparkIfStillFull(ticket: string): GateAnswer | undefined;
  /** Feeds the latency estimate; called with every finished attempt's duration. */
  observe(endpointId: string, durationMs: number): void;
}

interface EndpointState {
  latencyMs: number;
  /** Start times of this process's attempts in flight. */
  inFlight: Map<string, number>;
  waiters: (() => void)[];
  /** Parked tickets and when they are due back. */
  parked: Map<string, number>;
}

export function createEndpointGate(opts: { redis: Redis; keyPrefix: string; limit: number; leaseMs: number; random?: () => number; now?: () => number }): EndpointGate {
  const { redis, limit, leaseMs } = opts;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  // One small entry per endpoint this process delivered to: bounded by the endpoints table.
  const states = new Map<string, EndpointState>();
  /** Which endpoint each parked ticket waits for. */
  const parkedOn = new Map<string, string>();
  const key = (endpointId: string) => `${opts.keyPrefix}:webhook-inflight:${endpointId}`;

  const state = (endpointId: string): EndpointState => {
    let s = states.get(endpointId);
    if (!s) {
      s = { latencyMs: INITIAL_LATENCY_MS, inFlight: new Map(), waiters: [], parked: new Map() };
      states.set(endpointId, s);
    }
    return s;
  };

  const timePerAttemptMs = (s: EndpointState): number => {
    const t = now();
    let oldest = 0;
    for (const started of s.inFlight.values()) oldest = Math.max(oldest, t - started);
    return Math.max(s.latencyMs, oldest);
  };

  function park(endpointId: string, s: EndpointState, ticket: string): GateAnswer {
    const t = now();
    const slotInterval = timePerAttemptMs(s) / limit;
    let lastDue = t;
    for (const [other, due] of s.parked) {
      if (due < t - PARKED_FORGET_MS) {
        s.parked.delete(other);
        parkedOn.delete(other);
      } else lastDue = Math.max(lastDue, due);
    }
    const due = Math.max(t + slotInterval * (s.waiters.length + 1), lastDue + slotInterval);
    const delay = Math.round(Math.min(MAX_PARK_MS, Math.max(MIN_PARK_MS, due - t)) * (0.9 + 0.2 * random()));
    s.parked.set(ticket, t + delay);
    parkedOn.set(ticket, endpointId);
    return { retryInMs: delay };
  }

  async function tryLease(endpointId: string, s: EndpointState): Promise<GateAnswer | undefined> {
    if (s.inFlight.size >= limit) return undefined;
    const member = randomUUID();
    const got = (await redis.eval(ACQUIRE_LUA, 1, key(endpointId), limit, leaseMs, member)) === 1;
    if (!got) return undefined;
    s.inFlight.set(member, now());
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        s.inFlight.delete(member);
        redis.zrem(key(endpointId), member).catch(() => undefined); // the lease expires anyway
        s.waiters.shift()?.();
      },
    };
  }

  async function acquire(endpointId: string, ticket: string): Promise<GateAnswer> {
    const s = state(endpointId);
    s.parked.delete(ticket);
    parkedOn.delete(ticket);
    // Jobs already waiting go first; parked ones coming back compete with new ones.
    if (s.waiters.length === 0) {
      const lease = await tryLease(endpointId, s);
      if (lease) return lease;
    }
    if (s.waiters.length >= limit || (timePerAttemptMs(s) * (s.waiters.length + 1)) / limit > MAX_LOCAL_WAIT_MS) return park(endpointId, s, ticket);
    const deadline = now() + MAX_LOCAL_WAIT_MS;
    for (;;) {
      // Woken by a local release (first in line) or after POLL_MS for releases elsewhere.
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          const i = s.waiters.indexOf(wake);
          if (i >= 0) s.waiters.splice(i, 1);
          resolve();
        }, Math.min(POLL_MS, Math.max(1, deadline - now())));
        s.waiters.push(wake);
      });
      const lease = await tryLease(endpointId, s);
      if (lease) return lease;
      if (now() >= deadline) return park(endpointId, s, ticket);
    }
  }

  function reparkIfStillFull(ticket: string): GateAnswer | undefined {
    const endpointId = parkedOn.get(ticket);
    const s = endpointId === undefined ? undefined : states.get(endpointId);
    if (!endpointId || !s || s.inFlight.size < limit) return undefined;
    s.parked.delete(ticket);
    return park(endpointId, s, ticket);
  }

  return {
    acquire,
    reparkIfStillFull,
    observe(endpointId, durationMs) {
      const s = state(endpointId);
      s.latencyMs = s.latencyMs * (1 - EWMA_WEIGHT) + durationMs * EWMA_WEIGHT;
    },
  };
}
