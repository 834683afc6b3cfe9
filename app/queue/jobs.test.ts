/**
 * The email retry schedule when an email's earlier attempts were made by its batch job: the
 * `email` job it is handed on to must wait what a single send's job would, at every attempt.
 * BullMQ's own backoff computation (Backoffs.calculate) is the reference.
 */
import { Backoffs, type Job } from 'bullmq';
import { emailFollowOnJob, emailRetryDelayMs, jobFor, type JobSettings } from './jobs';

const settings: JobSettings = { email: { maxAttempts: 6, retryBaseMs: 1_000 } };
const ID = '00000000-0000-4000-8000-000000000001';

/** The wait BullMQ applies after this job's own attempt `attemptsMade` fails (jitter aside: its upper bound). */
function bullmqWait(opts: { backoff?: unknown }, attemptsMade: number): number {
  const backoff = { ...(opts.backoff as { type: string; delay: number }), jitter: 0 };
  return Backoffs.calculate(backoff as never, attemptsMade, new Error('421'), {} as Job) as number;
}

test('a single send waits retryBaseMs·2^(n-1) after attempt n', () => {
  const single = jobFor('email', ID, settings).opts;
  expect([1, 2, 3, 4].map((n) => bullmqWait(single, n))).toEqual([1_000, 2_000, 4_000, 8_000]);
});

test('an email handed on after k attempts in its batch waits the same at every later attempt', () => {
  for (const k of [1, 2, 3]) {
    const followOn = emailFollowOnJob(ID, settings, 0, k).opts;
    // The follow-on job's own attempt j is the email's attempt k + j.
    const waits = [1, 2, 3].map((j) => bullmqWait(followOn, j));
    expect(waits).toEqual([1, 2, 3].map((j) => 1_000 * 2 ** (k + j - 1)));
  }
});

test('the first wait, the one the batch job sets, is 50-100 % of the same step', () => {
  for (const n of [1, 2, 3]) {
    const step = 1_000 * 2 ** (n - 1);
    for (let i = 0; i < 200; i++) {
      const wait = emailRetryDelayMs(settings, n);
      expect(wait).toBeGreaterThanOrEqual(step / 2);
      expect(wait).toBeLessThanOrEqual(step);
    }
  }
});

test('a follow-on job keeps the rest of the email job contract (id, attempts, removal) and gets its delay', () => {
  const followOn = emailFollowOnJob(ID, settings, 1_234, 2);
  const single = jobFor('email', ID, settings);
  expect(followOn).toEqual({ ...single, opts: { ...single.opts, delay: 1_234, backoff: { ...(single.opts.backoff as object), delay: 4_000 } } });
});
