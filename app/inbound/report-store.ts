/**
 * The inbound role's reads and writes, in SQL written for the path every DSN takes (as the
 * webhook worker's delivery-store.ts): a small pg pool of its own, prepared statements, and
 * calls of concurrent SMTP sessions coalesced into one statement (shared/coalesce.ts). So a
 * report costs a share of two round trips (load the email, apply the report) however many
 * sessions deliver at once; through Prisma it was five of its own (the load, BEGIN, the rows,
 * the event, COMMIT), and their writes were most of the role's CPU (bench/deliverability.ts).
 *
 * Applying a report is one statement, atomic on its own: the timeline rows (a unique
 * (email, dedupe key) makes a repeated report change nothing), the suppressions, the status and
 * the webhook events with their deliveries (webhooks' fan-out rule). Reports of one email in the
 * same batch go in successive statements, so each sees the ones before it, as one at a time did.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { Prisma } from '../db/client';
import { createCoalescer } from '../shared/coalesce';
import { fanOutInsert } from '../webhooks';
import type { RecipientOutcome } from './classify';

/** A row of the email's timeline: a recipient's delivery status, or a complaint. */
export type ReportKind = RecipientOutcome | 'complaint';

export interface EmailRow {
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
  /** Recipients the last attempt left out (suppressed at send time): the email did not go to them. */
  suppressedRecipients: string[] | null;
}

export interface ReportEntry {
  kind: ReportKind;
  /** The email's own spelling when the address was one of its recipients. */
  recipient: string;
  isRecipient: boolean;
  status: string | null;
  diagnostic: string | null;
  dedupeKey: string;
  /** The webhook event a new entry emits; its payload's `status` becomes `bounced` when this report bounced the email. */
  event?: { type: string; payload: Prisma.InputJsonObject };
}

export interface ReportToApply {
  email: EmailRow;
  entries: ReportEntry[];
  /** Normalised, lower-case: who the email went to. Once all of them hard-bounced, a `sent` email becomes `bounced`. */
  sentTo: string[];
  /** When it was received: the rows' time. */
  at: Date;
}

export interface AppliedReport {
  /** The entries that were new (the others were on the timeline already). */
  recorded: ReportEntry[];
  bounced: boolean;
  deliveryIds: string[];
}

export interface UnusableMessage {
  applicationId: string | null;
  emailId: string | null;
  reason: string;
  detail: string;
  mailFrom: string;
  rcptTo: string[];
  remoteAddress: string;
  size: number;
  sample: string;
  receivedAt: Date;
}

/** Reports (or messages) in one statement at most. */
const MAX_BATCH = 200;
/** Statements of each kind in flight (the applies: see applyBatch). */
const LOADS_IN_FLIGHT = 2;
const APPLIES_IN_FLIGHT = 1;
const UNUSABLE_INSERTS_IN_FLIGHT = 1;
/** Connections the store's statements need at most: one for each statement in flight. */
export const REPORT_POOL_SIZE = LOADS_IN_FLIGHT + APPLIES_IN_FLIGHT + UNUSABLE_INSERTS_IN_FLIGHT;

const LOAD_SQL = `
  SELECT e."id"::text AS "id", e."applicationId"::text AS "applicationId", e."apiKeyId"::text AS "apiKeyId", e."status"::text AS "status",
         e."from", e."to", e."cc", e."bcc", e."subject", e."tags", e."metadata", e."messageId", e."attemptCount",
         (SELECT a."suppressedRecipients" FROM "email_attempts" a WHERE a."emailId" = e."id" ORDER BY a."number" DESC LIMIT 1) AS "suppressedRecipients"
  FROM "emails" e WHERE e."id" = ANY ($1::uuid[])`;

/** The apply statement for one round's entries and emails (JSON text); its text is the same every time. */
const applySql = (entries: string, emails: string) => Prisma.sql`
  WITH input AS (
    SELECT * FROM jsonb_to_recordset(${entries}::jsonb)
      AS i("emailId" uuid, "applicationId" uuid, "apiKeyId" uuid, "kind" "ReportKind", "recipient" text, "isRecipient" boolean,
           "status" text, "diagnostic" text, "dedupeKey" text, "eventId" uuid, "eventType" text, "payload" jsonb, "at" timestamp(3))
  ), mail AS (
    SELECT * FROM jsonb_to_recordset(${emails}::jsonb) AS m("emailId" uuid, "sentTo" text[], "at" timestamp(3))
  ), inserted AS (
    INSERT INTO "email_reports" ("id", "applicationId", "emailId", "kind", "recipient", "status", "diagnostic", "dedupeKey", "receivedAt")
    SELECT gen_random_uuid(), i."applicationId", i."emailId", i."kind", i."recipient", i."status", i."diagnostic", i."dedupeKey", i."at"
    FROM input i
    ON CONFLICT ("emailId", "dedupeKey") DO NOTHING
    RETURNING "emailId", "dedupeKey"
  ), fresh AS (
    SELECT i.* FROM input i JOIN inserted n ON n."emailId" = i."emailId" AND n."dedupeKey" = i."dedupeKey"
  ), suppressed AS (
    INSERT INTO "suppressions" ("id", "applicationId", "address", "reason", "emailId", "detail", "createdAt")
    SELECT gen_random_uuid(), f."applicationId", f."recipient", f."kind"::text::"SuppressionReason", f."emailId", f."diagnostic", f."at"
    FROM fresh f WHERE f."isRecipient" AND f."kind" IN ('hard_bounce', 'complaint')
    ON CONFLICT ("applicationId", "address") DO NOTHING
  ), bounced AS (
    UPDATE "emails" e SET "status" = 'bounced', "updatedAt" = m."at"
    FROM mail m
    WHERE e."id" = m."emailId" AND e."status" = 'sent'
      AND EXISTS (SELECT 1 FROM fresh f WHERE f."emailId" = m."emailId" AND f."kind" = 'hard_bounce' AND f."isRecipient")
      -- This statement does not see its own inserts, so earlier reports and fresh ones are joined.
      AND (SELECT count(DISTINCT lower(x."recipient")) FROM (
             SELECT r."recipient" FROM "email_reports" r WHERE r."emailId" = m."emailId" AND r."kind" = 'hard_bounce'
             UNION ALL SELECT f."recipient" FROM fresh f WHERE f."emailId" = m."emailId" AND f."kind" = 'hard_bounce'
           ) x WHERE lower(x."recipient") = ANY (m."sentTo")) >= cardinality(m."sentTo")
    RETURNING e."id"
  ), ev AS (
    INSERT INTO "events" ("id", "applicationId", "apiKeyId", "type", "payload", "createdAt")
    SELECT f."eventId", f."applicationId", f."apiKeyId", f."eventType",
           CASE WHEN b."id" IS NULL THEN f."payload" ELSE jsonb_set(f."payload", '{status}', '"bounced"') END, f."at"
    FROM fresh f LEFT JOIN bounced b ON b."id" = f."emailId"
    WHERE f."eventType" IS NOT NULL
    RETURNING "id", "applicationId", "type", "createdAt" AS "at", NULL::uuid AS "excludeEndpointId"
  ), d AS (${fanOutInsert('ev')})
  SELECT COALESCE((SELECT array_agg("emailId"::text || ' ' || "dedupeKey") FROM inserted), '{}') AS "inserted",
         COALESCE((SELECT array_agg("id"::text) FROM bounced), '{}') AS "bounced",
         COALESCE((SELECT array_agg("eventId"::text || ' ' || "id"::text) FROM d), '{}') AS "deliveries"`;

const UNUSABLE_SQL = `
  INSERT INTO "inbound_messages" ("id", "applicationId", "emailId", "reason", "detail", "mailFrom", "rcptTo", "remoteAddress", "size", "sample", "receivedAt")
  SELECT gen_random_uuid(), i."applicationId", i."emailId", i."reason", i."detail", i."mailFrom", i."rcptTo", i."remoteAddress", i."size", i."sample", i."receivedAt"
  FROM jsonb_to_recordset($1::jsonb)
    AS i("applicationId" uuid, "emailId" uuid, "reason" text, "detail" text, "mailFrom" text, "rcptTo" text[], "remoteAddress" text, "size" int,
         "sample" text, "receivedAt" timestamp(3))`;

export function createReportStore(pool: Pool) {
  const loadBatch = createCoalescer<{ id: string; found?: EmailRow }>({
    maxInFlight: LOADS_IN_FLIGHT,
    maxItems: MAX_BATCH,
    isolateFailures: true,
    async run(units) {
      const ids = [...new Set(units.map((u) => u.id))];
      const { rows } = await pool.query<EmailRow>({ name: 'inbound-email-load', text: LOAD_SQL, values: [ids] });
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const u of units) u.found = byId.get(u.id);
    },
  });

  // One statement at a time: reports of one email never race each other within this process.
  const applyBatch = createCoalescer<{ report: ReportToApply; applied?: AppliedReport }>({
    maxInFlight: APPLIES_IN_FLIGHT,
    maxItems: MAX_BATCH,
    isolateFailures: true,
    async run(units) {
      // An email once per statement: its second report must see the first's rows (the bounce count).
      // Round k holds the k-th report of each email in the batch.
      const byEmail = new Map<string, typeof units>();
      for (const u of units) {
        const list = byEmail.get(u.report.email.id);
        if (list) list.push(u);
        else byEmail.set(u.report.email.id, [u]);
      }
      const rounds = Math.max(...[...byEmail.values()].map((list) => list.length));
      for (let k = 0; k < rounds; k++) {
        const round = [...byEmail.values()].flatMap((list) => (k < list.length ? [list[k]] : []));
        const events = new Map<ReportEntry, string>();
        const entries = round.flatMap(({ report: { email, entries: list, at } }) =>
          list.map((e) => {
            // Ids made here, so each report finds the deliveries of its own events.
            if (e.event) events.set(e, randomUUID());
            return {
              emailId: email.id,
              applicationId: email.applicationId,
              apiKeyId: email.apiKeyId,
              kind: e.kind,
              recipient: e.recipient,
              isRecipient: e.isRecipient,
              status: e.status,
              diagnostic: e.diagnostic,
              dedupeKey: e.dedupeKey,
              eventId: events.get(e) ?? null,
              eventType: e.event?.type ?? null,
              payload: e.event?.payload ?? null,
              at: at.toISOString(),
            };
          }),
        );
        const emails = round.map(({ report }) => ({ emailId: report.email.id, sentTo: report.sentTo, at: report.at.toISOString() }));
        const sql = applySql(JSON.stringify(entries), JSON.stringify(emails));
        const { rows } = await pool.query<{ inserted: string[]; bounced: string[]; deliveries: string[] }>({ name: 'inbound-report-apply', text: sql.text, values: sql.values });
        const inserted = new Set(rows[0].inserted);
        const bounced = new Set(rows[0].bounced);
        const deliveriesOf = new Map<string, string[]>();
        for (const pair of rows[0].deliveries) {
          const [eventId, deliveryId] = pair.split(' ');
          const list = deliveriesOf.get(eventId);
          if (list) list.push(deliveryId);
          else deliveriesOf.set(eventId, [deliveryId]);
        }
        for (const u of round) {
          const { email, entries: list } = u.report;
          const recorded = list.filter((e) => inserted.has(`${email.id} ${e.dedupeKey}`));
          u.applied = { recorded, bounced: bounced.has(email.id), deliveryIds: recorded.flatMap((e) => deliveriesOf.get(events.get(e) ?? '') ?? []) };
        }
      }
    },
  });

  const unusableBatch = createCoalescer<UnusableMessage>({
    maxInFlight: UNUSABLE_INSERTS_IN_FLIGHT,
    maxItems: MAX_BATCH,
    isolateFailures: true,
    async run(messages) {
      const input = messages.map((m) => ({ ...m, receivedAt: m.receivedAt.toISOString() }));
      await pool.query({ name: 'inbound-unusable-insert', text: UNUSABLE_SQL, values: [JSON.stringify(input)] });
    },
  });

  return {
    async loadEmail(id: string): Promise<EmailRow | undefined> {
      const unit: { id: string; found?: EmailRow } = { id };
      await loadBatch([unit]);
      return unit.found;
    },
    /** Applies a report; resolves with what was new, whether the email became `bounced`, and deliveries to enqueue. */
    async apply(report: ReportToApply): Promise<AppliedReport> {
      const unit: { report: ReportToApply; applied?: AppliedReport } = { report };
      await applyBatch([unit]);
      return unit.applied!;
    },
    storeUnusable: (message: UnusableMessage) => unusableBatch([message]),
  };
}

export type ReportStore = ReturnType<typeof createReportStore>;
