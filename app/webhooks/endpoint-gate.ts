/**
 * Per-endpoint isolation in a worker process: at most `limit` attempts to one endpoint are in
 * flight at once, so an endpoint that hangs until the timeout holds `limit` of the worker's
 * WEBHOOK_CONCURRENCY slots and no more; every other endpoint keeps the rest.
 *
 * BullMQ's open-source edition has no per-group concurrency, and one queue serves every
 * endpoint, so the worker takes jobs in order and this gate decides what each one does:
 * - a free slot: go;
 * - no free slot, but a short expected wait (time per attempt × place in line / limit, at most
 *   MAX_LOCAL_WAIT_MS): wait in-process; a finishing attempt hands its slot straight to the
 *   first in line. A fast, busy endpoint thus keeps its slots full without bouncing jobs back
 *   to the queue; a slow one only lets a few wait, each briefly;
 * - otherwise: "come back in N ms". The processor parks the job in BullMQ's delayed set (no
 *   attempt is counted), which frees the worker slot. Parked jobs form a virtual queue: each is
 *   due back one slot interval (time per attempt / limit) after the parked jobs still ahead of
 *   it, so a backlog for a slow endpoint returns at about the pace the endpoint takes it.
 *
 * The time per attempt is the endpoint's observed latency (moving average), or the age of its
 * oldest attempt in flight when that is larger, so a hanging endpoint is recognized before its
 * first timeout.
 *
 * The bound is per worker process, which is what isolation needs (each process keeps its own
 * capacity for the other endpoints); a receiver sees at most replicas × limit requests at once.
 * Keeping it in-process costs no network round trip per attempt and leaks nothing when a worker
 * is killed.
 */

/** A job waits in-process only when its expected wait is at most this long. */
export const MAX_LOCAL_WAIT_MS = 250;
/**
 * Latency assumed for an endpoint not seen yet: pessimistic, so at first contact only `limit`
 * jobs wait in-process (a hanging endpoint is not known to hang yet); the first real sample
 * replaces it.
 */
const INITIAL_LATENCY_MS = MAX_LOCAL_WAIT_MS;
const EWMA_WEIGHT = 0.2;
const MIN_PARK_MS = 50;
const MAX_PARK_MS = 30_000;

export type GateAnswer = { release: () => void } | { retryInMs: number };

export interface EndpointGate {
  /** `ticket` names the job, so a parked job is not counted twice when it comes back. */
  acquire(endpointId: string, ticket: string): Promise<GateAnswer>;
  /**
   * For a job coming back from parking: parks it again at once when its endpoint still has no
   * free slot, so the caller can skip reading the delivery. Undefined otherwise.
   */
  reparkIfStillFull(ticket: string): GateAnswer | undefined;
  /** Feeds the latency estimate; called with every finished attempt's duration. */
  observe(endpointId: string, durationMs: number): void;
}

interface Waiter {
  grant: (release: () => void) => void;
  timer: NodeJS.Timeout;
}

interface EndpointState {
  latencyMs: number;
  observed: boolean;
  /** Start times of the attempts in flight, by slot. */
  inFlight: Map<number, number>;
  waiters: Waiter[];
  /** Parked tickets and when they are due back. */
  parked: Map<string, number>;
}

export function createEndpointGate(opts: { limit: number; random?: () => number; now?: () => number }): EndpointGate {
  const { limit } = opts;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  // One small entry per endpoint this process delivered to: bounded by the endpoints table.
  const states = new Map<string, EndpointState>();
  /** Which endpoint each parked ticket waits for. */
  const parkedOn = new Map<string, string>();
  let nextSlot = 0;

  const state = (endpointId: string): EndpointState => {
    let s = states.get(endpointId);
    if (!s) {
      s = { latencyMs: INITIAL_LATENCY_MS, observed: false, inFlight: new Map(), waiters: [], parked: new Map() };
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
    let ahead = 0;
    for (const [other, due] of s.parked) {
      if (due > t) ahead++;
      else if (due < t - MAX_PARK_MS) {
        // Never came back (deleted, taken by another worker): forget it.
        s.parked.delete(other);
        parkedOn.delete(other);
      }
    }
    const wait = (timePerAttemptMs(s) * (s.waiters.length + ahead + 1)) / limit;
    const delay = Math.round(Math.min(MAX_PARK_MS, Math.max(MIN_PARK_MS, wait)) * (0.9 + 0.2 * random()));
    s.parked.set(ticket, t + delay);
    parkedOn.set(ticket, endpointId);
    return { retryInMs: delay };
  }

  /** Takes a slot; its release hands the slot to the first waiter, if any. */
  function take(s: EndpointState): () => void {
    const slot = nextSlot++;
    s.inFlight.set(slot, now());
    let released = false;
    return () => {
      if (released) return;
      released = true;
      s.inFlight.delete(slot);
      const next = s.waiters.shift();
      if (next) {
        clearTimeout(next.timer);
        next.grant(take(s));
      }
    };
  }

  function acquire(endpointId: string, ticket: string): Promise<GateAnswer> {
    const s = state(endpointId);
    s.parked.delete(ticket);
    parkedOn.delete(ticket);
    if (s.inFlight.size < limit && s.waiters.length === 0) return Promise.resolve({ release: take(s) });
    if ((timePerAttemptMs(s) * (s.waiters.length + 1)) / limit > MAX_LOCAL_WAIT_MS) return Promise.resolve(park(endpointId, s, ticket));
    return new Promise<GateAnswer>((resolve) => {
      const waiter: Waiter = {
        grant: (release) => resolve({ release }),
        timer: setTimeout(() => {
          s.waiters.splice(s.waiters.indexOf(waiter), 1);
          resolve(park(endpointId, s, ticket));
        }, MAX_LOCAL_WAIT_MS),
      };
      s.waiters.push(waiter);
    });
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
      s.latencyMs = s.observed ? s.latencyMs * (1 - EWMA_WEIGHT) + durationMs * EWMA_WEIGHT : durationMs;
      s.observed = true;
    },
  };
}
