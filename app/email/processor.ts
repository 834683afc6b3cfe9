/**
 * The worker's email job: claim the row, send it over SMTP, record the attempt and the outcome.
 *
 * - Claim is a compare-and-set (queued → sending, or a due scheduled row, or a `sending` row whose
 *   holder's lease ran out because that worker died), in one statement that also opens the
 *   attempt row. Two workers never both win it, and cancel (queued → cancelled) wins or loses
 *   against it atomically. Terminal rows (sent, failed, cancelled) are skipped.
 * - Outcomes are written with the attempt number in the condition, so a worker that lost its
 *   lease cannot overwrite the result of the one that took over.
 * - SMTP 4xx and connection errors: attempt `retry`, the row back to queued, the job retried by
 *   BullMQ with exponential backoff and jitter (queue.ts) up to EMAIL_MAX_ATTEMPTS; 5xx or the
 *   last attempt: `failed` at once (UnrecoverableError). Terminal states record their webhook
 *   event in the same transaction, and the deliveries are enqueued after the commit.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Db } from '../db/client';
import type { Logger } from '../log';
import { emailJobSchema, type Queues } from '../queue';
import { enqueueDeliveries, recordEvent } from '../webhooks/events';
import { emailEventPayload, type EmailEventSource } from './events';
import { toMailMessage, type StoredEmail } from './message';
import type { EmailDeliveryMetrics } from './metrics';
import { classifySmtpError, type MailTransport, type SentInfo } from './transport';

interface ClaimedEmail extends StoredEmail, EmailEventSource {
  apiKeyId: string | null;
  createdAt: Date;
  scheduledAt: Date | null;
}

export interface EmailProcessorDeps {
  db: Db;
  queues: Queues;
  log: Logger;
  transport: MailTransport;
  metrics: EmailDeliveryMetrics;
  /** A `sending` row untouched for this long belongs to a dead worker (JOB_LOCK_MS, > SMTP timeout). */
  leaseMs: number;
  maxAttempts: number;
}

type Outcome = 'sent' | 'retry' | 'failed';

export function createEmailProcessor(deps: EmailProcessorDeps) {
  const { db, queues, log, transport, metrics, leaseMs, maxAttempts } = deps;

  async function claim(id: string): Promise<ClaimedEmail | undefined> {
    const rows = await db.$queryRaw<ClaimedEmail[]>`
      WITH claimed AS (
        UPDATE "emails" SET "status" = 'sending', "attemptCount" = "attemptCount" + 1, "updatedAt" = timezone('UTC', now())
        WHERE "id" = ${id}::uuid AND (
          "status" = 'queued'
          OR ("status" = 'scheduled' AND "scheduledAt" <= timezone('UTC', now()))
          OR ("status" = 'sending' AND "updatedAt" < timezone('UTC', now()) - make_interval(secs => ${leaseMs / 1000})))
        RETURNING "id", "apiKeyId", "from", "to", "cc", "bcc", "replyTo", "subject", "text", "html", "headers", "attachments",
                  "tags", "metadata", "messageId", "attemptCount", "createdAt", "scheduledAt"
      ), abandoned AS (
        UPDATE "email_attempts" SET "finishedAt" = timezone('UTC', now()), "outcome" = 'retry',
               "error" = 'abandoned: the worker stopped during this attempt'
        WHERE "emailId" IN (SELECT "id" FROM claimed) AND "finishedAt" IS NULL
      ), attempt AS (
        INSERT INTO "email_attempts" ("id", "emailId", "number", "startedAt")
        SELECT gen_random_uuid(), "id", "attemptCount", timezone('UTC', now()) FROM claimed
      )
      SELECT * FROM claimed`;
    return rows[0];
  }

  /** Writes an attempt's outcome; false when this worker no longer holds the email. */
  async function finish(
    run: Pick<Db, '$queryRaw'>,
    email: ClaimedEmail,
    outcome: Outcome,
    at: Date,
    details: { smtpResponse: string | null; error: string | null },
  ): Promise<boolean> {
    const status = outcome === 'retry' ? 'queued' : outcome;
    const rows = await run.$queryRaw<{ updated: number }[]>`
      WITH e AS (
        UPDATE "emails" SET "status" = ${status}::"EmailStatus", "updatedAt" = ${at}, "lastError" = ${details.error},
               "sentAt" = CASE WHEN ${outcome} = 'sent' THEN ${at}::timestamp ELSE "sentAt" END,
               "failedAt" = CASE WHEN ${outcome} = 'failed' THEN ${at}::timestamp ELSE "failedAt" END
        WHERE "id" = ${email.id}::uuid AND "status" = 'sending' AND "attemptCount" = ${email.attemptCount}
        RETURNING "id"
      ), a AS (
        UPDATE "email_attempts" SET "finishedAt" = ${at}, "outcome" = ${outcome}::"AttemptOutcome",
               "smtpResponse" = ${details.smtpResponse}, "error" = ${details.error}
        WHERE "emailId" = ${email.id}::uuid AND "number" = ${email.attemptCount}
      )
      SELECT count(*)::int AS "updated" FROM e`;
    return rows[0]?.updated === 1;
  }

  /** Terminal outcome and its webhook event in one transaction; deliveries enqueued after commit. */
  async function finishTerminal(email: ClaimedEmail, outcome: 'sent' | 'failed', details: { smtpResponse: string | null; error: string | null }) {
    const at = new Date();
    const deliveryIds = await db.$transaction(async (tx) => {
      if (!(await finish(tx, email, outcome, at, details))) return undefined;
      const event = await recordEvent(tx, { type: `email.${outcome}`, payload: emailEventPayload(email, outcome, at, details), apiKeyId: email.apiKeyId });
      return event.deliveryIds;
    });
    if (deliveryIds === undefined) {
      log.warn({ emailId: email.id, attempt: email.attemptCount }, 'email was taken over by another worker; outcome not recorded twice');
      return;
    }
    metrics.deliveries.inc({ outcome });
    if (outcome === 'sent') {
      const start = Math.max(email.createdAt.getTime(), email.scheduledAt?.getTime() ?? 0);
      metrics.acceptToDelivery.observe((at.getTime() - start) / 1000);
    }
    await enqueueDeliveries(queues, deliveryIds);
  }

  /** Why the job found nothing to claim: skip, or come back when the row is due / the lease ends. */
  async function notClaimed(job: Job, id: string): Promise<string> {
    const row = await db.email.findUnique({ where: { id }, select: { status: true, scheduledAt: true, updatedAt: true } });
    if (!row) return 'skipped: no such email';
    let retryAt: number | undefined;
    if (row.status === 'scheduled' && row.scheduledAt) retryAt = row.scheduledAt.getTime();
    else if (row.status === 'sending') retryAt = row.updatedAt.getTime() + leaseMs + 250;
    if (retryAt === undefined) return `skipped: ${row.status}`;
    await job.moveToDelayed(Math.max(retryAt, Date.now() + 50), job.token);
    throw new DelayedError();
  }

  async function process(job: Job): Promise<string> {
    const { emailId } = emailJobSchema.parse(job.data);
    const email = await claim(emailId);
    if (!email) return notClaimed(job, emailId);

    let info: SentInfo;
    try {
      info = await transport.send(toMailMessage(email));
    } catch (err) {
      const failure = classifySmtpError(err);
      const details = { smtpResponse: failure.response, error: failure.message };
      if (failure.retryable && email.attemptCount < maxAttempts) {
        await finish(db, email, 'retry', new Date(), details);
        metrics.deliveries.inc({ outcome: 'retry' });
        throw new Error(failure.message); // BullMQ retries it after the backoff
      }
      await finishTerminal(email, 'failed', details);
      throw new UnrecoverableError(failure.retryable ? `gave up after ${email.attemptCount} attempts: ${failure.message}` : failure.message);
    }
    const rejected = info.rejected.length ? `; rejected: ${info.rejected.map(String).join(', ')}` : '';
    await finishTerminal(email, 'sent', { smtpResponse: `${info.response}${rejected}`.slice(0, 1000), error: null });
    return 'sent';
  }

  return { process };
}
