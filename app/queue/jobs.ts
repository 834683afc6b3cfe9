/**
 * The queue contract, per job kind: the BullMQ queue it lives in, the job name, the payload (one
 * row id; the job id is that id too: outbox rule, DESIGN.md section 2) and the job options.
 * Adding a queue: add a kind here, a processor in its domain and a line in the worker root.
 */
import { Backoffs, type JobsOptions } from 'bullmq';
import { z } from 'zod';

/** Settings of the job options that come from configuration. */
export interface JobSettings {
  email: { maxAttempts: number; retryBaseMs: number };
}

/** An email's retry waits are 50-100 % of the exponential step. */
const EMAIL_RETRY_JITTER = 0.5;

/** Most emails one emailBatch job carries: a batch request's limit (email/limits.ts EMAIL_LIMITS.batch). */
export const EMAIL_BATCH_MAX = 100;

export const JOBS = {
  email: {
    queue: 'email-delivery',
    name: 'send',
    payload: z.object({ emailId: z.string().uuid() }),
    data: (emailId: string) => ({ emailId }),
    idOf: (data: { emailId: string }) => data.emailId,
    /**
     * Retries (SMTP 4xx, connection errors): exponential from retryBaseMs, each delay jittered to
     * 50-100 %. A completed job is removed at once, as webhook jobs are: keeping 10,000 of them
     * (the queue default) costs Redis a sorted-set insert and a trim on every completion, and
     * PostgreSQL has the history; a job added again for a sent email only finds it sent.
     */
    options: (s: JobSettings): JobsOptions => ({
      attempts: s.email.maxAttempts,
      backoff: { type: 'exponential', delay: s.email.retryBaseMs, jitter: EMAIL_RETRY_JITTER },
      removeOnComplete: true,
    }),
  },
  /**
   * Emails due now that one INSERT wrote (a batch request's, or single sends accepted together;
   * email/store.ts), 2 to EMAIL_BATCH_MAX, delivered by one job: one add in the api and one
   * fetch-and-finish in the worker instead of one each (in bench:email, the per-email adds were
   * ~60 % of the api's CPU on batch accept). The job id is
   * the first email's id, and every row names it (emails.deliveryBatchId), which is how the
   * sweeper tells a row whose batch job is alive from an orphan. An email of the batch that needs
   * another attempt (SMTP 4xx) or cannot be claimed yet goes on its own `email` job from then on.
   */
  emailBatch: {
    queue: 'email-batch-delivery',
    name: 'send-batch',
    payload: z.object({ emailIds: z.array(z.string().uuid()).min(1).max(EMAIL_BATCH_MAX) }),
    idOf: (data: { emailIds: string[] }) => data.emailIds[0],
    /** For the autoscaler a ready batch job counts as a full batch (itemsPerReadyJob). */
    itemsPerJob: EMAIL_BATCH_MAX,
    /**
     * Not retried by BullMQ: a batch job that fails (the database unreachable past the outcome
     * write's own retries) has ended, and the sweeper gives each of its unfinished emails a job
     * of its own, which retries with the email's backoff. A stalled one (its worker died) runs
     * again: what was sent is skipped, what another worker holds is handed on.
     */
    options: (): JobsOptions => ({ attempts: 1, removeOnComplete: true }),
  },
  webhook: {
    queue: 'webhook-delivery',
    name: 'deliver',
    payload: z.object({
      deliveryId: z.string().uuid(),
      /** A rate-limit slot reserved for attempt `attempt` (webhooks/rate-limiter.ts), kept while the job is parked until it. */
      rateSlot: z.object({ at: z.number(), attempt: z.number().int() }).optional(),
    }),
    data: (deliveryId: string) => ({ deliveryId }),
    idOf: (data: { deliveryId: string }) => data.deliveryId,
    /**
     * Retries and waits between attempts are the processor's business (it parks the job until the
     * delivery's nextAttemptAt); BullMQ's own attempts only cover an unexpected error in the
     * processor itself (database briefly unreachable), retried after 2, 4, 8, 16 s. A completed job
     * is removed at once: PostgreSQL keeps the history, and a job added again for a finished
     * delivery only finds it finished.
     */
    options: (): JobsOptions => ({ attempts: 5, backoff: { type: 'exponential', delay: 2_000 }, removeOnComplete: true }),
  },
  recovery: {
    queue: 'webhook-recovery',
    name: 'recover',
    payload: z.object({ recoveryId: z.string().uuid() }),
    data: (recoveryId: string) => ({ recoveryId }),
    idOf: (data: { recoveryId: string }) => data.recoveryId,
    /**
     * A recovery re-sends an endpoint's failed deliveries one after the other (webhooks/recovery-task.ts)
     * and keeps its place in PostgreSQL, so a job that ends early (a worker stopping, the database
     * briefly unreachable) continues where it stopped: retried after 5, 10, 20 ... s.
     */
    options: (): JobsOptions => ({ attempts: 20, backoff: { type: 'exponential', delay: 5_000 }, removeOnComplete: true }),
  },
} as const;

export type JobKind = keyof typeof JOBS;
export type QueueName = (typeof JOBS)[JobKind]['queue'];
export type JobData<K extends JobKind> = z.infer<(typeof JOBS)[K]['payload']>;

export const JOB_KINDS = Object.keys(JOBS) as JobKind[];

/**
 * What a ready job of this queue counts for when the worker scales on its backlog: its kind's
 * `itemsPerJob`, else one item (an email, a webhook delivery; queues outside the contract too).
 * A batch job counts as a full batch: the exact number of emails of the batches waiting would take
 * reading every one of them on each scrape, and the bound errs towards more workers.
 */
export function itemsPerReadyJob(queue: string): number {
  const kind = JOB_KINDS.find((k) => JOBS[k].queue === queue);
  return (kind && (JOBS[kind] as { itemsPerJob?: number }).itemsPerJob) || 1;
}

/** The row id a job is about, checked against the kind's payload schema. */
export function jobRowId<K extends JobKind>(kind: K, data: unknown): string {
  const job = JOBS[kind];
  return (job.idOf as (d: unknown) => string)(job.payload.parse(data));
}

/** The kinds whose job is about one row (all but emailBatch, whose jobs emailBatchJob builds). */
export type RowJobKind = Exclude<JobKind, 'emailBatch'>;

/** Everything BullMQ needs to add the job of row `id` (delay in ms, for scheduled rows). */
export function jobFor(kind: RowJobKind, id: string, settings: JobSettings, delayMs = 0) {
  const job = JOBS[kind];
  return {
    name: job.name,
    data: job.data(id) as Record<string, unknown>,
    opts: { ...job.options(settings), jobId: id, ...(delayMs > 0 ? { delay: delayMs } : {}) },
  };
}

/** The job delivering these emails (due now, written by one INSERT). */
export function emailBatchJob(emailIds: string[]) {
  const job = JOBS.emailBatch;
  return { name: job.name, data: { emailIds } as Record<string, unknown>, opts: { ...job.options(), jobId: job.idOf({ emailIds }) } };
}

/**
 * The wait before attempt `attemptsMade + 1` of an email, computed by BullMQ's own exponential
 * strategy with the email job's settings (retryBaseMs·2^(n-1), 50-100 % of it). For an email whose
 * attempt was made by its batch job, which then hands it to an `email` job.
 */
export function emailRetryDelayMs(settings: JobSettings, attemptsMade: number): number {
  return Backoffs.builtinStrategies.exponential(settings.email.retryBaseMs, EMAIL_RETRY_JITTER)(attemptsMade, 'exponential') as number;
}

/**
 * The `email` job of an email that already had `attemptsMade` attempts (in its batch job): its
 * backoff base is scaled by 2^attemptsMade, because BullMQ counts only this job's own attempts,
 * so the email keeps the schedule a single send has (after attempt n, retryBaseMs·2^(n-1)).
 */
export function emailFollowOnJob(id: string, settings: JobSettings, delayMs: number, attemptsMade: number) {
  const job = jobFor('email', id, settings, delayMs);
  const backoff = { ...(job.opts.backoff as { type: string; delay: number; jitter?: number }) };
  backoff.delay *= 2 ** attemptsMade;
  return { ...job, opts: { ...job.opts, backoff } };
}
