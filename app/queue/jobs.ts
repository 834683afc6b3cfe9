/**
 * The queue contract, per job kind: the BullMQ queue it lives in, the job name, the payload (one
 * row id; the job id is that id too: outbox rule, DESIGN.md section 2) and the job options.
 * Adding a queue: add a kind here, a processor in its domain and a line in the worker root.
 */
import type { JobsOptions } from 'bullmq';
import { z } from 'zod';

/** Settings of the job options that come from configuration. */
export interface JobSettings {
  email: { maxAttempts: number; retryBaseMs: number };
}

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
      backoff: { type: 'exponential', delay: s.email.retryBaseMs, jitter: 0.5 },
      removeOnComplete: true,
    }),
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

/** The row id a job is about, checked against the kind's payload schema. */
export function jobRowId<K extends JobKind>(kind: K, data: unknown): string {
  const job = JOBS[kind];
  return (job.idOf as (d: unknown) => string)(job.payload.parse(data));
}

/** Everything BullMQ needs to add the job of row `id` (delay in ms, for scheduled rows). */
export function jobFor(kind: JobKind, id: string, settings: JobSettings, delayMs = 0) {
  const job = JOBS[kind];
  return {
    name: job.name,
    data: job.data(id) as Record<string, string>,
    opts: { ...job.options(settings), jobId: id, ...(delayMs > 0 ? { delay: delayMs } : {}) },
  };
}
