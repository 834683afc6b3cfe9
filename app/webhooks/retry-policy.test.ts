import { parseRetryAfter, retryDelayMs } from './retry-policy';

const schedule = [5_000, 300_000, 1_800_000];

describe('retryDelayMs', () => {
  it('follows the schedule, one retry per entry, then gives up', () => {
    const policy = { scheduleMs: schedule, retryAfterMaxMs: 3_600_000, random: () => 0.5 };
    expect([1, 2, 3, 4].map((n) => retryDelayMs(policy, n))).toEqual([5_000, 300_000, 1_800_000, undefined]);
  });

  it('adds at most ±20 % jitter', () => {
    expect(retryDelayMs({ scheduleMs: schedule, retryAfterMaxMs: 0, random: () => 0 }, 1)).toBe(4_000);
    expect(retryDelayMs({ scheduleMs: schedule, retryAfterMaxMs: 0, random: () => 0.999999 }, 1)).toBe(6_000);
  });

  it('waits at least as long as Retry-After asks, up to the bound', () => {
    const policy = { scheduleMs: schedule, retryAfterMaxMs: 60_000, random: () => 0.5 };
    expect(retryDelayMs(policy, 1, 30_000)).toBe(30_000);
    expect(retryDelayMs(policy, 1, 10 * 3_600_000)).toBe(60_000);
    // a shorter Retry-After does not bring a retry forward
    expect(retryDelayMs(policy, 2, 1_000)).toBe(300_000);
    // the bound never cuts below the schedule's own delay
    expect(retryDelayMs(policy, 3, 10 * 3_600_000)).toBe(1_800_000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});
