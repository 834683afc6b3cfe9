/**
 * The email worker's two hot statements (processor.ts runs them, each for many concurrent jobs):
 * the claim, and the outcome with its event and deliveries.
 *
 * Both are driven by the emails' primary keys, whatever the table's size or statistics. They run
 * as prepared statements, so PostgreSQL plans them once for any batch: a plan that scanned the
 * table, or read the status index's whole `queued` backlog, would cost each statement time in
 * proportion to the table (measured: 3.7 ms instead of 0.4 ms for 8 outcomes at 5,000 rows, and
 * most of PostgreSQL's CPU an email in bench:email). Hence `id = ANY (ids)` beside every join with
 * the input, and the tests of an email's state written as a CASE, which no index can serve.
 *
 * An attempt row is written once, when the attempt ends (the outcome statement). While it runs,
 * the email row says all there is (`sending`, attemptCount, updatedAt = when it was claimed), and
 * the API shows the running attempt from it (service.ts). A worker that dies mid-attempt leaves
 * no row: the claim that takes the email over writes it, as abandoned.
 */
import { Prisma } from '../db/client';
import { fanOutInsert } from '../webhooks';

/** Bodies up to this size come with the claim (most emails); larger ones are loaded within the budget. */
export const INLINE_BODY_BYTES = 64 * 1024;

const ABANDONED_ATTEMPT_ERROR = 'abandoned: the worker stopped during this attempt';

/**
 * Claims the emails among `ids` that are due: queued, scheduled and due, or `sending` with an
 * expired lease (its worker died). Returns them with "startedAt" (the claim's time) and
 * "bodyBytes"; text, html and attachments only when bodyBytes ≤ INLINE_BODY_BYTES.
 */
export function claimStatement(ids: string[], leaseMs: number): Prisma.Sql {
  return Prisma.sql`
    WITH claimed AS (
      UPDATE "emails" m SET "status" = 'sending', "attemptCount" = m."attemptCount" + 1, "updatedAt" = timezone('UTC', now())
      -- The row as it was: whose lease ran out, and since when (the abandoned attempt's start).
      FROM (SELECT "id", "status" AS "previousStatus", "updatedAt" AS "previousUpdatedAt" FROM "emails" WHERE "id" = ANY (${ids}::uuid[])) p
      WHERE m."id" = p."id" AND CASE m."status"
        WHEN 'queued' THEN true
        WHEN 'scheduled' THEN m."scheduledAt" <= timezone('UTC', now())
        WHEN 'sending' THEN m."updatedAt" < timezone('UTC', now()) - make_interval(secs => ${leaseMs / 1000})
        ELSE false END
      RETURNING m."id", m."applicationId", m."apiKeyId", m."from", m."to", m."cc", m."bcc", m."replyTo", m."subject", m."text", m."html", m."headers",
                m."attachments", m."tags", m."metadata", m."messageId", m."attemptCount", m."createdAt", m."scheduledAt", m."updatedAt",
                p."previousStatus", p."previousUpdatedAt",
                (COALESCE(octet_length(m."text"), 0) + COALESCE(octet_length(m."html"), 0)
                 + CASE WHEN m."attachments" IS NULL OR m."attachments" = '[]'::jsonb THEN 0 ELSE octet_length(m."attachments"::text) END)::int AS "bodyBytes"
    ), abandoned AS (
      -- A dead worker's attempt. Its row exists if that worker wrote its outcome after all (its
      -- write then lost to this claim on the email row): keep what it wrote. An open row (written
      -- at claim time by versions before this one) is closed.
      INSERT INTO "email_attempts" ("id", "applicationId", "emailId", "number", "startedAt", "finishedAt", "outcome", "error")
      SELECT gen_random_uuid(), "applicationId", "id", "attemptCount" - 1, "previousUpdatedAt", "updatedAt", 'retry', ${ABANDONED_ATTEMPT_ERROR}
      FROM claimed WHERE "previousStatus" = 'sending'
      ON CONFLICT ("emailId", "number") DO UPDATE SET "finishedAt" = excluded."finishedAt", "outcome" = excluded."outcome", "error" = excluded."error"
        WHERE "email_attempts"."finishedAt" IS NULL
    )
    SELECT "id", "applicationId", "apiKeyId", "from", "to", "cc", "bcc", "replyTo", "subject", "headers", "tags", "metadata", "messageId",
           "attemptCount", "bodyBytes",
           -- Stored in UTC without a zone; node-postgres would read such a value in the process's zone.
           "createdAt" AT TIME ZONE 'UTC' AS "createdAt", "scheduledAt" AT TIME ZONE 'UTC' AS "scheduledAt", "updatedAt" AT TIME ZONE 'UTC' AS "startedAt",
           CASE WHEN "bodyBytes" <= ${INLINE_BODY_BYTES} THEN "text" END AS "text",
           CASE WHEN "bodyBytes" <= ${INLINE_BODY_BYTES} THEN "html" END AS "html",
           CASE WHEN "bodyBytes" <= ${INLINE_BODY_BYTES} THEN "attachments" END AS "attachments"
    FROM claimed`;
}

/** One attempt's end, as the outcome statement takes it. */
export interface OutcomeInput {
  id: string;
  applicationId: string;
  /** The attempt number: the email's attemptCount as claimed. */
  number: number;
  /** The email's status after it: queued (to retry), sent or failed. */
  status: 'queued' | 'sent' | 'failed';
  outcome: 'sent' | 'retry' | 'failed';
  startedAt: Date;
  at: Date;
  smtpResponse: string | null;
  error: string | null;
  /** email.sent / email.failed for terminal outcomes, with its payload; null for a retry. */
  eventType: string | null;
  payload: unknown;
  apiKeyId: string | null;
  suppressedRecipients: string[];
}

/**
 * Records outcomes, one statement for any number (atomic on its own): each email row
 * (compare-and-set on its attempt number), its attempt row, and for terminal outcomes whose email
 * row was written the `email.*` event with its deliveries (webhooks' fan-out rule). Returns the
 * ids of the emails written ("recorded": the others were taken over by another worker) and of
 * the deliveries. The attempt row is written either way: it is what that attempt did, even when
 * another worker has taken the email over (and written it as abandoned) meanwhile.
 */
export function outcomeStatement(input: OutcomeInput[]): Prisma.Sql {
  const ids = input.map((i) => i.id);
  return Prisma.sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(input)}::jsonb)
        AS i("id" uuid, "applicationId" uuid, "number" int, "status" "EmailStatus", "outcome" "AttemptOutcome", "startedAt" timestamp(3), "at" timestamp(3),
             "smtpResponse" text, "error" text, "eventType" text, "payload" jsonb, "apiKeyId" uuid, "suppressedRecipients" text[])
    ), e AS (
      UPDATE "emails" m SET "status" = i."status", "updatedAt" = i."at", "lastError" = i."error",
             "sentAt" = CASE WHEN i."outcome" = 'sent' THEN i."at" ELSE m."sentAt" END,
             "failedAt" = CASE WHEN i."outcome" = 'failed' THEN i."at" ELSE m."failedAt" END
      FROM input i
      WHERE m."id" = ANY (${ids}::uuid[]) AND m."id" = i."id" AND m."applicationId" = i."applicationId"
        AND CASE m."status" WHEN 'sending' THEN m."attemptCount" = i."number" ELSE false END
      RETURNING m."id"
    ), a AS (
      INSERT INTO "email_attempts" ("id", "applicationId", "emailId", "number", "startedAt", "finishedAt", "outcome", "smtpResponse", "error", "suppressedRecipients")
      SELECT gen_random_uuid(), i."applicationId", i."id", i."number", i."startedAt", i."at", i."outcome", i."smtpResponse", i."error", i."suppressedRecipients"
      FROM input i
      ON CONFLICT ("emailId", "number") DO UPDATE SET "finishedAt" = excluded."finishedAt", "outcome" = excluded."outcome",
        "smtpResponse" = excluded."smtpResponse", "error" = excluded."error", "suppressedRecipients" = excluded."suppressedRecipients"
    ), ev AS (
      INSERT INTO "events" ("id", "applicationId", "apiKeyId", "type", "payload", "createdAt")
      SELECT gen_random_uuid(), i."applicationId", i."apiKeyId", i."eventType", i."payload", i."at"
      FROM input i JOIN e ON e."id" = i."id"
      WHERE i."eventType" IS NOT NULL
      RETURNING "id", "applicationId", "type", "createdAt" AS "at", NULL::uuid AS "excludeEndpointId"
    ), d AS (${fanOutInsert('ev')})
    SELECT COALESCE((SELECT array_agg("id"::text) FROM e), '{}') AS "recorded",
           COALESCE((SELECT array_agg("id"::text) FROM d), '{}') AS "deliveryIds"`;
}
