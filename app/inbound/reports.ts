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
export class TryAgainLater extends Error {}

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

  async function apply(email: EmailRow, entries: Entry[]): Promise<{ recorded: Entry[]; deliveryIds: string[] }> {
    const now = new Date();
    return db.$transaction(async (tx) => {
      const recorded: Entry[] = [];
      for (const e of entries) {
        const inserted = await tx.$queryRaw<{ id: string }[]>`
          INSERT INTO "email_reports" ("id", "applicationId", "emailId", "kind", "recipient", "status", "diagnostic", "dedupeKey", "receivedAt")
          VALUES (${randomUUID()}::uuid, ${email.applicationId}::uuid, ${email.id}::uuid, ${e.kind}::"ReportKind", ${e.recipient}, ${e.status}, ${e.diagnostic}, ${e.dedupeKey}, ${now}::timestamp(3))
          ON CONFLICT ("emailId", "dedupeKey") DO NOTHING
          RETURNING "id"::text AS "id"`;
        if (inserted.length === 0) continue;
        recorded.push(e);
        if (e.isRecipient && (e.kind === 'hard_bounce' || e.kind === 'complaint')) {
          await tx.$executeRaw`
            INSERT INTO "suppressions" ("id", "applicationId", "address", "reason", "emailId", "detail", "createdAt")
            VALUES (${randomUUID()}::uuid, ${email.applicationId}::uuid, ${e.recipient}, ${e.kind}::"SuppressionReason", ${email.id}::uuid, ${e.diagnostic}, ${now}::timestamp(3))
            ON CONFLICT ("applicationId", "address") DO NOTHING`;
        }
      }
      let status = email.status;
      if (recorded.some((e) => e.kind === 'hard_bounce' && e.isRecipient) && status === 'sent') {
        const dropped = new Set((email.suppressedRecipients ?? []).map((a) => a.toLowerCase()));
        const sentTo = normaliseAll([...email.to, ...email.cc, ...email.bcc]).filter((a) => !dropped.has(a.toLowerCase()));
        const bounced = await tx.$queryRaw<{ recipient: string }[]>`
          SELECT DISTINCT lower("recipient") AS "recipient" FROM "email_reports" WHERE "emailId" = ${email.id}::uuid AND "kind" = 'hard_bounce'`;
        const hard = new Set(bounced.map((b) => b.recipient));
        if (sentTo.every((a) => hard.has(a.toLowerCase()))) {
          const changed = await tx.$executeRaw`UPDATE "emails" SET "status" = 'bounced', "updatedAt" = ${now}::timestamp(3) WHERE "id" = ${email.id}::uuid AND "status" = 'sent'`;
          if (changed > 0) status = 'bounced';
        }
      }
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
