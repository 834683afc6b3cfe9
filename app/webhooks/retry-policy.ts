/**
 * When to try a failed delivery again. The schedule (WEBHOOK_RETRY_SCHEDULE, Standard Webhooks'
 * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h by default) gives the delay after each failed attempt;
 * its length is the number of retries, so a delivery gets at most schedule.length + 1 attempts.
 * Delays get ±20 % jitter so a receiver that failed many deliveries at once is not hit by all of
 * their retries in the same instant. A receiver's Retry-After is honoured: the delay is never
 * shorter than what it asked for, up to `retryAfterMaxMs`.
 */
export const JITTER = 0.2;

export interface RetryPolicy {
  scheduleMs: readonly number[];
  retryAfterMaxMs: number;
  random?: () => number;
}

/** Delay after failed attempt `attemptNumber` (1-based), or undefined when no retry is left. */
export function retryDelayMs(policy: RetryPolicy, attemptNumber: number, retryAfterMs?: number): number | undefined {
  const base = policy.scheduleMs[attemptNumber - 1];
  if (base === undefined) return undefined;
  const random = policy.random ?? Math.random;
  const jittered = Math.round(base * (1 - JITTER + 2 * JITTER * random()));
  if (retryAfterMs === undefined) return jittered;
  // The bound never shortens the schedule's own delay.
  return Math.max(jittered, Math.min(retryAfterMs, Math.max(policy.retryAfterMaxMs, base)));
}

/** Retry-After as delay-seconds or an HTTP-date (RFC 9110 section 10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP-date names a weekday and month; without letters Date.parse would read "-5" as a year.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
