/**
 * What an inbound message changes (DESIGN.md section 11). The listener hands every message here;
 * when this resolves, the listener answers 250.
 *
 * Which email: the VERP address it was sent to (envelope RCPT TO), else the return path in the
 * returned original's headers; both must carry a valid tag. A complaint may instead name the
 * email by the original's X-EaseEmail-Id, if the original's Message-ID is that email's too
 * (feedback loops send to a registered address, not to the return path). Anything that names no
 * email of ours (no or a forged tag, an unknown id) is stored with its reason and changes nothing.
 *
 * What it does, in one transaction:
 * - each recipient's report becomes a row on the email's timeline; a unique (email, dedupe key)
 *   makes a repeated report (the same DSN twice, a second complaint) change nothing;
 * - hard bounces and complaints suppress the address, if it was a recipient of that email;
 * - when every recipient the email went to has hard-bounced, a `sent` email becomes `bounced`;
 * - webhook events email.bounced, email.delivery_delayed, email.complained (once per new report).
 * A report for an email still `sending` (the DSN beat the worker's own write) is answered 451:
 * the reporting MTA retries it a little later.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Db, Prisma } from '../db/client';
import type { Verp } from '../deliverability';
import { emailEventPayload, type EmailEventType } from '../email';
import type { Logger } from '../log';
import type { JobProducer } from '../queue/producer';
import { normaliseAll } from '../suppressions';
import { recordEvent } from '../webhooks';
import { classifyMessage, type Classification, type RecipientOutcome } from './classify';
import type { InboundEnvelope } from './listener';

/** A row of the email's timeline: a recipient's delivery status, or a complaint. */
export type ReportKind = RecipientOutcome | 'complaint';

/** Kept of an unusable message for inspection: enough to see what it was, bounded per row. */
const SAMPLE_BYTES = 16 * 1024;

export type InboundResult =
  | { kind: 'report'; emailId: string; applicationId: string; recorded: ReportKind[]; duplicates: number }
  | { kind: 'unusable'; reason: string };

/** The listener answers 451 for this: the sender's MTA tries again later. */
export class TryAgainLater extends Error {
  readonly temporary = true;
}

interface EmailRow {
  id: string;
  applicationId: string;
  apiKeyId: string | null;
  status: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  tags: string[];
  metadata: unknown;
  messageId: string | null;
  attemptCount: number;
  suppressedRecipients: string[] | null;
}

interface Entry {
  kind: ReportKind;
  /** The email's own spelling when the address was one of its recipients. */
  recipient: string;
  isRecipient: boolean;
  status: string | null;
  diagnostic: string | null;
  dedupeKey: string;
}

const EVENT_OF: Partial<Record<ReportKind, EmailEventType>> = {
  hard_bounce: 'email.bounced',
  delayed: 'email.delivery_delayed',
  complaint: 'email.complained',
};

export interface ReportRecorder {
  record(envelope: InboundEnvelope, raw: Buffer): Promise<InboundResult>;
}

export function createReportRecorder(deps: { db: Db; jobs: Pick<JobProducer, 'enqueue'>; verp: Verp; log: Logger }): ReportRecorder {
  const { db, jobs, verp, log } = deps;

  async function storeUnusable(envelope: InboundEnvelope, raw: Buffer, reason: string, detail: string, email?: EmailRow): Promise<InboundResult> {
    // PostgreSQL text refuses NUL; the sample is for people to read, so bytes map one to one (latin1).
    const sample = raw.subarray(0, SAMPLE_BYTES).toString('latin1').replace(/\0/g, '\uFFFD');
    await db.$executeRaw`
      INSERT INTO "inbound_messages" ("id", "applicationId", "emailId", "reason", "detail", "mailFrom", "rcptTo", "remoteAddress", "size", "sample", "receivedAt")
      VALUES (${randomUUID()}::uuid, ${email?.applicationId ?? null}::uuid, ${email?.id ?? null}::uuid, ${reason}, ${detail.slice(0, 1000)},
              ${envelope.mailFrom.slice(0, 320)}, ${envelope.rcptTo.map((r) => r.slice(0, 320))}::text[], ${envelope.remoteAddress}, ${raw.length}, ${sample}, ${new Date()}::timestamp(3))`;
    log.info({ reason, detail, rcptTo: envelope.rcptTo, size: raw.length }, 'inbound message changes nothing; stored for inspection');
    return { kind: 'unusable', reason };
  }

  /** The email id a report is about, from a tagged return path; why not, otherwise. */
  function attribute(envelope: InboundEnvelope, c: Exclude<Classification, { kind: 'unusable' }>): { emailId: string; byHeader?: true } | { problem: string } {
    let problem = 'no_return_path';
    for (const address of [...envelope.rcptTo, c.original.returnPath].filter((a): a is string => !!a)) {
      const parsed = verp.parse(address);
      if ('emailId' in parsed) return { emailId: parsed.emailId };
      if (parsed.problem === 'bad_tag') problem = 'bad_tag';
    }
    if (c.kind === 'complaint' && c.original.emailId && c.original.messageId && /^[0-9a-f-]{36}$/.test(c.original.emailId)) return { emailId: c.original.emailId, byHeader: true };
    return { problem };
  }

  async function loadEmail(id: string): Promise<EmailRow | undefined> {
    const rows = await db.$queryRaw<EmailRow[]>`
      SELECT e."id", e."applicationId", e."apiKeyId", e."status"::text AS "status", e."from", e."to", e."cc", e."bcc", e."subject", e."tags", e."metadata",
             e."messageId", e."attemptCount",
             (SELECT a."suppressedRecipients" FROM "email_attempts" a WHERE a."emailId" = e."id" ORDER BY a."number" DESC LIMIT 1) AS "suppressedRecipients"
      FROM "emails" e WHERE e."id" = ${id}::uuid`;
    return rows[0];
  }

  function entriesOf(c: Exclude<Classification, { kind: 'unusable' }>, email: EmailRow, raw: Buffer): Entry[] {
    const ours = new Map(normaliseAll([...email.to, ...email.cc, ...email.bcc]).map((a) => [a.toLowerCase(), a]));
    // Repeats of the same delay or delivery notice are duplicates; a later notice is news.
    const reportKey = c.reportId ?? createHash('sha256').update(raw).digest('hex').slice(0, 32);
    const entry = (kind: ReportKind, candidates: (string | null)[], status: string | null, diagnostic: string | null): Entry => {
      const known = candidates.map((a) => a && ours.get(a.toLowerCase())).find((a): a is string => !!a);
      const recipient = known ?? candidates.find((a): a is string => !!a) ?? '(not reported)';
      const once = kind === 'hard_bounce' || kind === 'complaint';
      return { kind, recipient, isRecipient: !!known, status, diagnostic, dedupeKey: `${kind}:${recipient.toLowerCase()}${once ? '' : `:${reportKey}`}` };
    };
    if (c.kind === 'complaint') {
      // A feedback loop often redacts the recipient; with one recipient there is no doubt who complained.
      const only = ours.size === 1 ? [...ours.values()][0] : null;
      return [entry('complaint', [c.recipient, ...c.original.recipients.filter((r) => ours.has(r.toLowerCase())).slice(0, 1), only], null, `feedback type: ${c.feedbackType}`)];
    }
    return c.recipients.map((r) => entry(r.outcome, [r.originalRecipient, r.recipient], r.status, r.diagnostic));
  }

  /**
   * One statement for the rows (reports, suppressions, the status), then one per new event, in one
   * transaction: a report costs four round trips however many recipients it names (measured in
   * bench/deliverability.ts).
   */
  async function apply(email: EmailRow, entries: Entry[]): Promise<{ recorded: Entry[]; deliveryIds: string[] }> {
    const now = new Date();
    const dropped = new Set((email.suppressedRecipients ?? []).map((a) => a.toLowerCase()));
    // Who the email went to: a `sent` email becomes `bounced` once every one of them hard-bounced.
    const sentTo = [...new Set(normaliseAll([...email.to, ...email.cc, ...email.bcc]).map((a) => a.toLowerCase()))].filter((a) => !dropped.has(a));
    return db.$transaction(async (tx) => {
      const [result] = await tx.$queryRaw<{ inserted: string[] | null; bounced: boolean }[]>`
        WITH input AS (
          SELECT * FROM jsonb_to_recordset(${JSON.stringify(entries)}::jsonb)
            AS i("kind" "ReportKind", "recipient" text, "isRecipient" boolean, "status" text, "diagnostic" text, "dedupeKey" text)
        ), inserted AS (
          INSERT INTO "email_reports" ("id", "applicationId", "emailId", "kind", "recipient", "status", "diagnostic", "dedupeKey", "receivedAt")
          SELECT gen_random_uuid(), ${email.applicationId}::uuid, ${email.id}::uuid, i."kind", i."recipient", i."status", i."diagnostic", i."dedupeKey", ${now}::timestamp(3)
          FROM input i
          ON CONFLICT ("emailId", "dedupeKey") DO NOTHING
          RETURNING "dedupeKey"
        ), fresh AS (
          SELECT i.* FROM input i JOIN inserted n ON n."dedupeKey" = i."dedupeKey"
        ), suppressed AS (
          INSERT INTO "suppressions" ("id", "applicationId", "address", "reason", "emailId", "detail", "createdAt")
          SELECT gen_random_uuid(), ${email.applicationId}::uuid, f."recipient", f."kind"::text::"SuppressionReason", ${email.id}::uuid, f."diagnostic", ${now}::timestamp(3)
          FROM fresh f WHERE f."isRecipient" AND f."kind" IN ('hard_bounce', 'complaint')
          ON CONFLICT ("applicationId", "address") DO NOTHING
        ), bounced AS (
          UPDATE "emails" SET "status" = 'bounced', "updatedAt" = ${now}::timestamp(3)
          WHERE "id" = ${email.id}::uuid AND "status" = 'sent'
            AND EXISTS (SELECT 1 FROM fresh WHERE "kind" = 'hard_bounce' AND "isRecipient")
            -- This statement does not see its own inserts, so earlier reports and fresh ones are joined.
            AND (SELECT count(DISTINCT lower(x."recipient")) FROM (
                   SELECT "recipient" FROM "email_reports" WHERE "emailId" = ${email.id}::uuid AND "kind" = 'hard_bounce'
                   UNION ALL SELECT "recipient" FROM fresh WHERE "kind" = 'hard_bounce'
                 ) x WHERE lower(x."recipient") = ANY (${sentTo}::text[])) >= ${sentTo.length}
          RETURNING "id"
        )
        SELECT (SELECT array_agg("dedupeKey") FROM inserted) AS "inserted", EXISTS (SELECT 1 FROM bounced) AS "bounced"`;
      const insertedKeys = new Set(result.inserted ?? []);
      const recorded = entries.filter((e) => insertedKeys.has(e.dedupeKey));
      const status = result.bounced ? 'bounced' : email.status;
      const deliveryIds: string[] = [];
      for (const e of recorded) {
        const type = EVENT_OF[e.kind];
        if (!type) continue;
        const payload: Prisma.InputJsonObject = {
          ...emailEventPayload(email, status as 'sent' | 'bounced', now),
          report: { kind: e.kind, recipient: e.recipient, status: e.status, diagnostic: e.diagnostic, receivedAt: now.toISOString() },
        };
        deliveryIds.push(...(await recordEvent(tx, { type, payload, apiKeyId: email.apiKeyId, applicationId: email.applicationId })).deliveryIds);
      }
      return { recorded, deliveryIds };
    });
  }

  return {
    async record(envelope, raw) {
      const c = classifyMessage(raw);
      if (c.kind === 'unusable') return storeUnusable(envelope, raw, c.reason, c.detail);
      const who = attribute(envelope, c);
      if ('problem' in who) return storeUnusable(envelope, raw, who.problem, `a ${c.kind.replace('_', ' ')} that names no email of ours`);
      const email = await loadEmail(who.emailId);
      if (!email) return storeUnusable(envelope, raw, 'unknown_email', `no email ${who.emailId}`);
      if (who.byHeader && email.messageId !== c.original.messageId) {
        return storeUnusable(envelope, raw, 'unverified_original', 'the original message id does not match the email', email);
      }
      if (email.status === 'sending') throw new TryAgainLater(`email ${email.id} is still being sent`);
      const { recorded, deliveryIds } = await apply(email, entriesOf(c, email, raw));
      await jobs.enqueue('webhook', deliveryIds);
      const entries = c.kind === 'complaint' ? 1 : c.recipients.length;
      log.info({ emailId: email.id, applicationId: email.applicationId, recorded: recorded.map((e) => e.kind), duplicates: entries - recorded.length }, 'delivery report recorded');
      return { kind: 'report', emailId: email.id, applicationId: email.applicationId, recorded: recorded.map((e) => e.kind), duplicates: entries - recorded.length };
    },
  };
}
