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
 * What it does, in one statement (report-store.ts, shared by the reports of concurrent sessions):
 * - each recipient's report becomes a row on the email's timeline; a unique (email, dedupe key)
 *   makes a repeated report (the same DSN twice, a second complaint) change nothing;
 * - hard bounces and complaints suppress the address, if it was a recipient of that email;
 * - when every recipient the email went to has hard-bounced, a `sent` email becomes `bounced`;
 * - webhook events email.bounced, email.delivery_delayed, email.complained (once per new report).
 * A report for an email still `sending` (the DSN beat the worker's own write) is answered 451:
 * the reporting MTA retries it a little later.
 */
import { createHash } from 'node:crypto';
import type { Verp } from '../deliverability';
import { emailEventPayload, type EmailEventType } from '../email';
import type { Logger } from '../log';
import type { JobProducer } from '../queue/producer';
import { looksLikeUuid } from '../shared/ids';
import { normaliseAll } from '../suppressions';
import { classifyMessage, type Classification } from './classify';
import type { InboundEnvelope } from './listener';
import type { EmailRow, ReportEntry, ReportKind, ReportStore } from './report-store';

/** Kept of an unusable message for inspection: enough to see what it was, bounded per row. */
const SAMPLE_BYTES = 16 * 1024;

export type InboundResult =
  | { kind: 'report'; emailId: string; applicationId: string; recorded: ReportKind[]; duplicates: number }
  | { kind: 'unusable'; reason: string };

/** The listener answers 451 for this: the sender's MTA tries again later. */
export class TryAgainLater extends Error {
  readonly temporary = true;
}

const EVENT_OF: Partial<Record<ReportKind, EmailEventType>> = {
  hard_bounce: 'email.bounced',
  delayed: 'email.delivery_delayed',
  complaint: 'email.complained',
};

export interface ReportRecorder {
  record(envelope: InboundEnvelope, raw: Buffer): Promise<InboundResult>;
}

export function createReportRecorder(deps: { store: ReportStore; jobs: Pick<JobProducer, 'enqueue'>; verp: Verp; log: Logger }): ReportRecorder {
  const { store, jobs, verp, log } = deps;

  async function storeUnusable(envelope: InboundEnvelope, raw: Buffer, reason: string, detail: string, email?: EmailRow): Promise<InboundResult> {
    // PostgreSQL text refuses NUL; the sample is for people to read, so bytes map one to one (latin1).
    const sample = raw.subarray(0, SAMPLE_BYTES).toString('latin1').replace(/\0/g, '\uFFFD');
    await store.storeUnusable({
      applicationId: email?.applicationId ?? null,
      emailId: email?.id ?? null,
      reason,
      detail: detail.slice(0, 1000),
      mailFrom: envelope.mailFrom.slice(0, 320),
      rcptTo: envelope.rcptTo.map((r) => r.slice(0, 320)),
      remoteAddress: envelope.remoteAddress,
      size: raw.length,
      sample,
      receivedAt: new Date(),
    });
    log.debug({ reason, detail, rcptTo: envelope.rcptTo, size: raw.length }, 'inbound message changes nothing; stored for inspection');
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
    if (c.kind === 'complaint' && c.original.emailId && c.original.messageId && looksLikeUuid(c.original.emailId)) return { emailId: c.original.emailId, byHeader: true };
    return { problem };
  }

  /** `recipients`: the email's to, cc and bcc, normalised. */
  function entriesOf(c: Exclude<Classification, { kind: 'unusable' }>, email: EmailRow, recipients: string[], raw: Buffer, at: Date): ReportEntry[] {
    const ours = new Map(recipients.map((a) => [a.toLowerCase(), a]));
    // Repeats of the same delay or delivery notice are duplicates; a later notice is news.
    const reportKey = c.reportId ?? createHash('sha256').update(raw).digest('hex').slice(0, 32);
    const entry = (kind: ReportKind, candidates: (string | null)[], status: string | null, diagnostic: string | null): ReportEntry => {
      const known = candidates.map((a) => a && ours.get(a.toLowerCase())).find((a): a is string => !!a);
      const recipient = known ?? candidates.find((a): a is string => !!a) ?? '(not reported)';
      const once = kind === 'hard_bounce' || kind === 'complaint';
      const type = EVENT_OF[kind];
      return {
        kind,
        recipient,
        isRecipient: !!known,
        status,
        diagnostic,
        dedupeKey: `${kind}:${recipient.toLowerCase()}${once ? '' : `:${reportKey}`}`,
        // The status is the email's; the statement makes it `bounced` when this report bounced the email.
        ...(type
          ? { event: { type, payload: { ...emailEventPayload(email, email.status as 'sent', at), report: { kind, recipient, status, diagnostic, receivedAt: at.toISOString() } } } }
          : {}),
      };
    };
    if (c.kind === 'complaint') {
      // A feedback loop often redacts the recipient; with one recipient there is no doubt who complained.
      const only = ours.size === 1 ? [...ours.values()][0] : null;
      return [entry('complaint', [c.recipient, ...c.original.recipients.filter((r) => ours.has(r.toLowerCase())).slice(0, 1), only], null, `feedback type: ${c.feedbackType}`)];
    }
    return c.recipients.map((r) => entry(r.outcome, [r.originalRecipient, r.recipient], r.status, r.diagnostic));
  }

  return {
    async record(envelope, raw) {
      const c = classifyMessage(raw);
      if (c.kind === 'unusable') return storeUnusable(envelope, raw, c.reason, c.detail);
      const who = attribute(envelope, c);
      if ('problem' in who) return storeUnusable(envelope, raw, who.problem, `a ${c.kind.replace('_', ' ')} that names no email of ours`);
      const email = await store.loadEmail(who.emailId);
      if (!email) return storeUnusable(envelope, raw, 'unknown_email', `no email ${who.emailId}`);
      if (who.byHeader && email.messageId !== c.original.messageId) {
        return storeUnusable(envelope, raw, 'unverified_original', 'the original message id does not match the email', email);
      }
      if (email.status === 'sending') throw new TryAgainLater(`email ${email.id} is still being sent`);
      const at = new Date();
      const dropped = new Set((email.suppressedRecipients ?? []).map((a) => a.toLowerCase()));
      // Who the email went to: a `sent` email becomes `bounced` once every one of them hard-bounced.
      const recipients = normaliseAll([...email.to, ...email.cc, ...email.bcc]);
      const sentTo = [...new Set(recipients.map((a) => a.toLowerCase()))].filter((a) => !dropped.has(a));
      const entries = entriesOf(c, email, recipients, raw, at);
      const { recorded, deliveryIds } = await store.apply({ email, entries, sentTo, at });
      await jobs.enqueue('webhook', deliveryIds);
      const kinds = recorded.map((e) => e.kind);
      log.debug({ emailId: email.id, applicationId: email.applicationId, recorded: kinds, duplicates: entries.length - recorded.length }, 'delivery report recorded');
      return { kind: 'report', emailId: email.id, applicationId: email.applicationId, recorded: kinds, duplicates: entries.length - recorded.length };
    },
  };
}
