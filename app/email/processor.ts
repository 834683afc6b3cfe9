/**
 * The worker's email jobs: claim the row, send it over SMTP, record the attempt and the outcome.
 * An `email` job carries one email; an `emailBatch` job the emails of one batch request
 * (queue/jobs.ts), claimed together and handed on to `email` jobs when they need another attempt.
 *
 * - Claim is a compare-and-set (queued → sending, or a due scheduled row, or a `sending` row whose
 *   holder's lease ran out because that worker died; its attempt is then recorded as abandoned).
 *   Two workers never both win it, and cancel (queued → cancelled) wins or loses
 *   against it atomically. Terminal rows (sent, failed, cancelled) are skipped.
 * - Outcomes, with the attempt's row, are written with the attempt number in the condition, so a
 *   worker that lost its lease cannot overwrite the result of the one that took over. The
 *   statements are in delivery-statements.ts.
 * - SMTP 4xx and connection errors: attempt `retry`, the row back to queued, the job retried by
 *   BullMQ with exponential backoff and jitter (queue/jobs.ts) up to EMAIL_MAX_ATTEMPTS; 5xx or the
 *   last attempt: `failed` at once (UnrecoverableError). Terminal states record their webhook
 *   event in the same statement as the outcome, and the deliveries are enqueued after it.
 *
 * Concurrent jobs share round trips (shared/coalesce.ts): their claims go in one statement, and
 * their outcomes (with events and deliveries) in another. Each row keeps its own compare-and-set.
 * So an email costs, beyond SMTP, a share of two statements and of BullMQ's one fetch-and-finish
 * script; before this it was a claim plus BEGIN, two statements a result and COMMIT. The share
 * shrinks as more jobs run at once (WORKER_CONCURRENCY), which is why the default is well above
 * the SMTP pool: jobs waiting for a connection cost nothing but their message's memory.
 *
 * That memory is bounded apart from the concurrency: the claim brings the body (text, html,
 * attachments) only of small emails; a larger one loads it after taking its share of a byte
 * budget, so a run of 7 MiB attachments cannot take the worker past its heap cap.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Pool } from 'pg';
import type { Db } from '../db/client';
import type { Logger } from '../log';
import { emailFollowOnJob, emailRetryDelayMs, JOBS, jobRowId, type JobSettings } from '../queue';
import type { QueueProcessor } from '../queue/processor';
import type { JobProducer, QueueJob } from '../queue/producer';
import { createByteBudget } from '../shared/byte-budget';
import { createCoalescer } from '../shared/coalesce';
import { claimStatement, INLINE_BODY_BYTES, outcomeStatement, type OutcomeInput } from './delivery-statements';
import { emailEventPayload, type EmailEventSource } from './events';
import type { StoredEmail } from './message';
import type { OutgoingMail } from './outgoing';
import type { EmailDeliveryMetrics } from './metrics';
import { finishSuppressed } from './suppressed';
import { classifySmtpError, type MailTransport, type SentInfo } from './transport';

interface ClaimedEmail extends StoredEmail, EmailEventSource {
  applicationId: string;
  apiKeyId: string | null;
  createdAt: Date;
  scheduledAt: Date | null;
  /** When this attempt's claim took the email (its attempt row's startedAt). */
  startedAt: Date;
  /** Stored size of text, html and attachments; above INLINE_BODY_BYTES they are not in the claim's row. */
  bodyBytes: number;
}

export interface EmailProcessorDeps {
  db: Db;
  /**
   * The hot path's own connections (EMAIL_POOL_SIZE): the claim and outcome statements run as
   * prepared statements on them, without the ORM layer (~9 % of the worker's CPU an email in the
   * profile went to Prisma's raw-query handling; PostgreSQL also skips parsing and planning).
   */
  pool: Pool;
  jobs: Pick<JobProducer, 'enqueue' | 'add'>;
  log: Logger;
  transport: MailTransport;
  /** Suppressed recipients left out, return path (VERP) and DKIM signature (deliverability/outgoing.ts). */
  outgoing: OutgoingMail;
  metrics: EmailDeliveryMetrics;
  /** A `sending` row untouched for this long belongs to a dead worker (JOB_LOCK_MS, > SMTP timeout). */
  leaseMs: number;
  /** Attempts an email gets, and the retry backoff of the email jobs that batches hand emails on to. */
  settings: JobSettings;
  /** Emails a worker has claimed and not finished at once, from single and batch jobs alike (WORKER_CONCURRENCY). */
  concurrency: number;
}

type Outcome = 'sent' | 'retry' | 'failed';

/** How one claimed email's attempt ended, for its job to finish by. */
type Delivery = { kind: 'done'; summary: string } | { kind: 'retry'; error: string } | { kind: 'failed'; error: string };

/** Why an email could not be claimed: nothing more to do, or a time to come back (a due scheduled row, a lease to run out). */
type NotClaimed = { skip: string } | { retryAt: number; attemptCount: number };

interface AttemptResult {
  email: ClaimedEmail;
  outcome: Outcome;
  at: Date;
  smtpResponse: string | null;
  error: string | null;
  /** Recipients left out of this attempt because they are suppressed. */
  suppressedRecipients?: string[];
  /** Set by the write: false when another worker had taken the email over. */
  recorded?: boolean;
  deliveryIds?: string[];
}

interface ClaimRequest {
  id: string;
  claimed?: ClaimedEmail;
}

/** One statement or transaction at a time: what arrives meanwhile joins the next, bigger one. */
const MAX_IN_FLIGHT = 1;
/**
 * Batch jobs a worker runs at once. Their emails go through the same bound as single jobs'
 * (`concurrency`); two let the next batch's emails in as the current one's last ones finish.
 */
const BATCH_JOBS_AT_ONCE = 2;
/** Connections of the email hot path's pool: the claims and the outcomes in flight. */
export const EMAIL_POOL_SIZE = 2 * MAX_IN_FLIGHT;
const MAX_PER_STATEMENT = 500;
/**
 * Heap a worker lets message content take at once. An email in flight holds about three times its
 * stored size (the stored strings, the decoded attachments, the composed message): the largest
 * accepted email (10 MiB request) then takes ~30 MiB, so two fit beside everything else under the
 * worker's heap cap (264 MiB, charts/model); small emails (inline) are not counted, 50 of them
 * take < 10 MiB.
 */
const BODY_MEMORY_BUDGET_BYTES = 64 * 1024 * 1024;
const BODY_MEMORY_FACTOR = 3;
/**
 * An outcome waits this long for others to share its statement. SMTP sends end one by one, so
 * without it the statements carried ~5 outcomes each; nothing waits on the write but the job's
 * end (the message has reached the SMTP server). bench:email, 10,000 emails then 2,000 single
 * sends at 200/s: 3,433 → 2,711 outcome statements, PostgreSQL 0.22 → 0.18 ms and the worker
 * 0.60 → 0.53 ms of CPU an email in the 10,000, accept → received p50 5.9 / 5.5 ms.
 */
const OUTCOME_LINGER_MS = 3;
/** A terminal outcome is written again after these pauses before the job gives up (the send happened). */
const FINISH_RETRY_DELAYS_MS = [200, 1_000, 3_000];

export function createEmailProcessors(deps: EmailProcessorDeps): QueueProcessor[] {
  const { db, pool, jobs, log, transport, outgoing, metrics, leaseMs, settings } = deps;
  const { maxAttempts } = settings.email;
  const bodyBudget = createByteBudget(BODY_MEMORY_BUDGET_BYTES);
  // The byte budget used as a count of emails: what a worker that dies can leave claimed (and
  // send twice) is at most this many, however many emails its batch jobs carry.
  const inFlight = createByteBudget(deps.concurrency);

  const claim = createCoalescer<ClaimRequest>({
    maxInFlight: MAX_IN_FLIGHT,
    maxItems: MAX_PER_STATEMENT,
    async run(requests) {
      const claimSql = claimStatement(requests.map((r) => r.id), leaseMs);
      const { rows } = await pool.query<ClaimedEmail>({ name: 'email-claim', text: claimSql.text, values: claimSql.values });
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const r of requests) r.claimed = byId.get(r.id);
    },
  });

  /** Writes outcomes (delivery-statements.ts); marks each result `recorded` unless another worker holds that email now. */
  async function writeOutcomes(results: AttemptResult[]): Promise<string[]> {
    const input: OutcomeInput[] = results.map((r) => ({
      id: r.email.id,
      applicationId: r.email.applicationId,
      number: r.email.attemptCount,
      status: r.outcome === 'retry' ? 'queued' : r.outcome,
      outcome: r.outcome,
      startedAt: r.email.startedAt,
      at: r.at,
      smtpResponse: r.smtpResponse,
      error: r.error,
      eventType: r.outcome === 'retry' ? null : `email.${r.outcome}`,
      payload: r.outcome === 'retry' ? null : emailEventPayload(r.email, r.outcome, r.at, r),
      apiKeyId: r.email.apiKeyId,
      suppressedRecipients: r.suppressedRecipients ?? [],
    }));
    const outcomeSql = outcomeStatement(input);
    const {
      rows: [{ recorded, deliveryIds }],
    } = await pool.query<{ recorded: string[]; deliveryIds: string[] }>({ name: 'email-outcomes', text: outcomeSql.text, values: outcomeSql.values });
    const written = new Set(recorded);
    for (const r of results) r.recorded = written.has(r.email.id);
    return deliveryIds;
  }

  /** Outcomes of concurrent jobs, one statement for all; their webhook deliveries enqueued after it. */
  const finish = createCoalescer<AttemptResult>({
    maxInFlight: MAX_IN_FLIGHT,
    maxItems: MAX_PER_STATEMENT,
    lingerMs: OUTCOME_LINGER_MS,
    async run(results) {
      let deliveryIds: string[];
      for (let attempt = 0; ; attempt++) {
        try {
          deliveryIds = await writeOutcomes(results);
          break;
        } catch (err) {
          if (attempt >= FINISH_RETRY_DELAYS_MS.length) throw err;
          log.warn({ err, emails: results.length }, 'could not record email outcomes; trying again');
          await new Promise((r) => setTimeout(r, FINISH_RETRY_DELAYS_MS[attempt]));
        }
      }
      await jobs.enqueue('webhook', deliveryIds);
    },
  });

  async function recordTerminal(result: AttemptResult): Promise<void> {
    await finish([result]);
    if (!result.recorded) {
      log.warn({ applicationId: result.email.applicationId, emailId: result.email.id, attempt: result.email.attemptCount }, 'email was taken over by another worker; outcome not recorded twice');
      return;
    }
    metrics.deliveries.inc({ outcome: result.outcome, application: result.email.applicationId });
    if (result.outcome === 'sent') {
      const start = Math.max(result.email.createdAt.getTime(), result.email.scheduledAt?.getTime() ?? 0);
      metrics.acceptToDelivery.observe((result.at.getTime() - start) / 1000);
    }
  }

  /** Why the email could not be claimed: skip it, or come back when the row is due / the lease ends. */
  async function notClaimed(id: string): Promise<NotClaimed> {
    const row = await db.email.findUnique({ where: { id }, select: { status: true, scheduledAt: true, updatedAt: true, attemptCount: true } });
    if (!row) return { skip: 'skipped: no such email' };
    if (row.status === 'scheduled' && row.scheduledAt) return { retryAt: row.scheduledAt.getTime(), attemptCount: row.attemptCount };
    if (row.status === 'sending') return { retryAt: row.updatedAt.getTime() + leaseMs + 250, attemptCount: row.attemptCount };
    return { skip: `skipped: ${row.status}` };
  }

  /** The `email` job: one email, retried by BullMQ (its backoff) while the email has attempts left. */
  async function process(job: Job): Promise<string> {
    const emailId = jobRowId('email', job.data);
    const release = await inFlight.acquire(1);
    try {
      const request: ClaimRequest = { id: emailId };
      await claim([request]);
      if (!request.claimed) {
        const why = await notClaimed(emailId);
        if ('skip' in why) return why.skip;
        await job.moveToDelayed(Math.max(why.retryAt, Date.now() + 50), job.token);
        throw new DelayedError();
      }
      const delivery = await deliver(request.claimed);
      if (delivery.kind === 'retry') throw new Error(delivery.error); // BullMQ retries it after the backoff
      if (delivery.kind === 'failed') throw new UnrecoverableError(delivery.error);
      return delivery.summary;
    } finally {
      release();
    }
  }

  /**
   * The `emailBatch` job: the emails of one batch request, each through the same steps as an
   * `email` job's and within the same bound of emails in flight. They are let in a chunk at a time
   * (half the bound), and a chunk's claims go in one statement, as do its suppression checks:
   * let in one by one as others finished, they went in statements of ~4 rows, and PostgreSQL's
   * CPU per email went mostly to the statements, not the rows. An email that needs another
   * attempt, or that cannot be claimed yet (another worker's lease), goes on its own `email` job,
   * due when a single send's would be. Every email is seen to its end before the job fails on an
   * unexpected error (jobs.ts: a failed batch job is not retried; the sweeper takes its
   * unfinished emails over).
   */
  async function processBatch(job: Job): Promise<string> {
    const { emailIds } = JOBS.emailBatch.payload.parse(job.data);
    const chunkSize = Math.max(1, Math.floor(deps.concurrency / 2));
    const handedOn: QueueJob[] = [];
    const tally = new Map<string, number>();
    const failed: unknown[] = [];

    async function finishOne(request: ClaimRequest): Promise<string> {
      const email = request.claimed;
      if (!email) {
        const why = await notClaimed(request.id);
        if ('skip' in why) return why.skip;
        handedOn.push(emailFollowOnJob(request.id, settings, Math.max(50, why.retryAt - Date.now()), why.attemptCount));
        return 'handed on';
      }
      const delivery = await deliver(email);
      if (delivery.kind === 'retry') handedOn.push(emailFollowOnJob(email.id, settings, emailRetryDelayMs(settings, email.attemptCount), email.attemptCount));
      return delivery.kind === 'done' ? delivery.summary : delivery.kind;
    }

    const running: Promise<void>[] = [];
    for (let i = 0; i < emailIds.length; i += chunkSize) {
      const requests: ClaimRequest[] = emailIds.slice(i, i + chunkSize).map((id) => ({ id }));
      const release = await inFlight.acquire(requests.length);
      const claimed = claim(requests);
      for (const request of requests) {
        // Settled here, never rejected: the loop may still be waiting for the next chunk's turn.
        const done = claimed.then(() => finishOne(request)).then(
          (result) => void tally.set(result, (tally.get(result) ?? 0) + 1),
          (err: unknown) => void failed.push(err),
        );
        running.push(done.finally(() => release(1)));
      }
    }
    await Promise.all(running);
    // Not added: the rows are queued (or sending) with no live job once this one completes, and
    // the sweeper gives each a job of its own.
    if (!(await jobs.add('email', handedOn))) log.warn({ batch: job.id, emails: handedOn.length }, 'could not hand emails of a batch on to their own jobs; the sweeper will');
    if (failed.length > 0) throw new AggregateError(failed, `${failed.length} of ${emailIds.length} emails of the batch ended in an error; the sweeper gives them jobs of their own`);
    return [...tally].map(([result, n]) => `${result}: ${n}`).join(', ');
  }

  /** A claimed email, its body loaded if the claim left it out (byte budget), to its recorded outcome. */
  async function deliver(email: ClaimedEmail): Promise<Delivery> {
    if (email.bodyBytes <= INLINE_BODY_BYTES) return send(email);
    const release = await bodyBudget.acquire(email.bodyBytes * BODY_MEMORY_FACTOR);
    try {
      const body = await db.email.findFirstOrThrow({ where: { id: email.id, applicationId: email.applicationId }, select: { text: true, html: true, attachments: true } });
      return await send({ ...email, ...body });
    } finally {
      release();
    }
  }

  /** From a claimed email with its body to the recorded outcome. */
  async function send(email: ClaimedEmail): Promise<Delivery> {
    const prepared = await outgoing.prepare(email);
    if (prepared.kind === 'suppressed') {
      const finished = await finishSuppressed({ db, jobs }, email, prepared.suppressed);
      if (finished) metrics.deliveries.inc({ outcome: 'suppressed', application: email.applicationId });
      return { kind: 'done', summary: finished ? 'suppressed' : 'skipped: taken over by another worker' };
    }
    const suppressedRecipients = prepared.suppressed;
    let info: SentInfo;
    try {
      info = await transport.send(prepared.message);
    } catch (err) {
      const failure = classifySmtpError(err);
      const result: AttemptResult = { email, outcome: 'failed', at: new Date(), smtpResponse: failure.response, error: failure.message, suppressedRecipients };
      if (failure.retryable && email.attemptCount < maxAttempts) {
        await finish([{ ...result, outcome: 'retry' }]);
        metrics.deliveries.inc({ outcome: 'retry', application: email.applicationId });
        return { kind: 'retry', error: failure.message };
      }
      await recordTerminal(result);
      return { kind: 'failed', error: failure.retryable ? `gave up after ${email.attemptCount} attempts: ${failure.message}` : failure.message };
    }
    const rejected = info.rejected.length ? `; rejected: ${info.rejected.map(String).join(', ')}` : '';
    await recordTerminal({ email, outcome: 'sent', at: new Date(), smtpResponse: `${info.response}${rejected}`.slice(0, 1000), error: null, suppressedRecipients });
    return { kind: 'done', summary: 'sent' };
  }

  // Jobs of a worker that died are handed out again once their lock expires; look that often.
  const stalledInterval = Math.min(30_000, leaseMs);
  return [
    { queue: JOBS.email.queue, process, options: { stalledInterval } },
    { queue: JOBS.emailBatch.queue, process: processBatch, options: { stalledInterval, concurrency: BATCH_JOBS_AT_ONCE } },
  ];
}
