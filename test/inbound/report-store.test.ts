/**
 * The inbound role's store (app/inbound/report-store.ts) against a real PostgreSQL: reports that
 * arrive together share one statement, and each must still get exactly what it would have got
 * alone: its own new rows, its own status change, the deliveries of its own events; a second
 * report of the same email sees the first one's rows; a repeated report changes nothing.
 */
import { Pool } from 'pg';
import { statementPoolSettings } from '../../app/db/connection';
import { emailEventPayload } from '../../app/email';
import { createReportStore, type EmailRow, type ReportEntry, type ReportStore } from '../../app/inbound/report-store';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { countStatements } from '../support/statements';

let t: TestEnvironment;
let pool: Pool;
let statements: ReturnType<typeof countStatements>;
let store: ReportStore;
let endpointId: string;

beforeAll(async () => {
  t = await createTestEnvironment('inbound_store');
  pool = new Pool(statementPoolSettings(t.config.databaseUrl, 4));
  statements = countStatements(pool);
  store = createReportStore(pool);
  [{ id: endpointId }] = await t.db.$queryRaw<{ id: string }[]>`
    INSERT INTO "webhook_endpoints" ("id", "applicationId", "url", "eventTypes", "secretEncrypted", "updatedAt")
    SELECT gen_random_uuid(), "id", 'https://hooks.example.com/all', '{}', 'not-used-here', now() FROM "applications" WHERE "name" = 'default'
    RETURNING "id"::text AS "id"`;
});
afterAll(async () => {
  await pool?.end();
  await t?.cleanup();
});

/** A `sent` email to `to`, as the worker leaves it (one attempt). */
async function sentEmail(to: string[]): Promise<EmailRow> {
  const [{ id }] = await t.db.$queryRaw<{ id: string }[]>`
    INSERT INTO "emails" ("id", "status", "from", "to", "cc", "bcc", "replyTo", "subject", "tags", "attemptCount", "createdAt", "updatedAt", "sentAt", "messageId")
    VALUES (gen_random_uuid(), 'sent', 'Shop <shop@example.com>', ${to}::text[], '{}', '{}', '{}', 'Your order', '{}', 1, now(), now(), now(), '<m@example.com>')
    RETURNING "id"::text AS "id"`;
  await t.db.$executeRaw`INSERT INTO "email_attempts" ("id", "emailId", "number", "startedAt", "finishedAt", "outcome") VALUES (gen_random_uuid(), ${id}::uuid, 1, now(), now(), 'sent')`;
  return (await store.loadEmail(id))!;
}

function hardBounce(email: EmailRow, recipient: string, at: Date): ReportEntry {
  return {
    kind: 'hard_bounce',
    recipient,
    isRecipient: true,
    status: '5.1.1',
    diagnostic: 'no such user',
    dedupeKey: `hard_bounce:${recipient.toLowerCase()}`,
    event: { type: 'email.bounced', payload: { ...emailEventPayload(email, 'sent', at), report: { kind: 'hard_bounce', recipient } } },
  };
}

function report(email: EmailRow, recipient: string) {
  const at = new Date();
  return { email, entries: [hardBounce(email, recipient, at)], sentTo: email.to.map((a) => a.toLowerCase()), at };
}

/** The deliveries recorded for the email's events, by the event's payload status. */
async function deliveriesOf(emailId: string): Promise<{ id: string; status: string }[]> {
  return t.db.$queryRaw`
    SELECT d."id"::text AS "id", e."payload"->>'status' AS "status" FROM "webhook_deliveries" d JOIN "events" e ON e."id" = d."eventId"
    WHERE e."payload"->>'emailId' = ${emailId} AND d."endpointId" = ${endpointId}::uuid ORDER BY d."id"`;
}

test('loads emails of concurrent calls together, with the recipients the last attempt left out', async () => {
  const a = await sentEmail(['a@example.org']);
  const b = await sentEmail(['b@example.org', 'left-out@example.org']);
  await t.db.$executeRaw`UPDATE "email_attempts" SET "suppressedRecipients" = '{left-out@example.org}' WHERE "emailId" = ${b.id}::uuid`;
  statements.reset();
  const [ra, rb, missing] = await Promise.all([store.loadEmail(a.id), store.loadEmail(b.id), store.loadEmail('00000000-0000-4000-8000-00000000abcd')]);
  expect(ra).toMatchObject({ id: a.id, status: 'sent', to: ['a@example.org'], suppressedRecipients: [], attemptCount: 1 });
  expect(rb).toMatchObject({ id: b.id, to: ['b@example.org', 'left-out@example.org'], suppressedRecipients: ['left-out@example.org'] });
  expect(missing).toBeUndefined();
  expect(statements.count()).toBe(1);
});

test('reports of different emails in one batch: each gets its own rows, status and deliveries', async () => {
  const emails = await Promise.all(Array.from({ length: 12 }, (_, i) => sentEmail([`batch${i}@example.org`])));
  const results = await Promise.all(emails.map((e) => store.apply(report(e, e.to[0]))));
  for (const [i, e] of emails.entries()) {
    expect(results[i].recorded.map((r) => r.recipient)).toEqual([e.to[0]]);
    expect(results[i].bounced).toBe(true);
    const deliveries = await deliveriesOf(e.id);
    expect(deliveries).toEqual([{ id: expect.any(String), status: 'bounced' }]);
    expect(results[i].deliveryIds).toEqual(deliveries.map((d) => d.id));
  }
  const rows = await t.db.$queryRaw<{ emailId: string; status: string; suppressed: boolean }[]>`
    SELECT e."id"::text AS "emailId", e."status"::text AS "status",
           EXISTS (SELECT 1 FROM "suppressions" s WHERE s."address" = e."to"[1] AND s."emailId" = e."id") AS "suppressed"
    FROM "emails" e WHERE e."id" = ANY (${emails.map((e) => e.id)}::uuid[])`;
  expect(rows).toHaveLength(12);
  for (const r of rows) expect(r).toMatchObject({ status: 'bounced', suppressed: true });
});

test("two reports of one email in one batch: the second sees the first's bounce, as one after the other would", async () => {
  const email = await sentEmail(['one@example.org', 'two@example.org']);
  const [first, second] = await Promise.all([store.apply(report(email, 'one@example.org')), store.apply(report(email, 'two@example.org'))]);
  expect(first).toMatchObject({ bounced: false, recorded: [expect.objectContaining({ recipient: 'one@example.org' })] });
  expect(second).toMatchObject({ bounced: true, recorded: [expect.objectContaining({ recipient: 'two@example.org' })] });
  expect((await deliveriesOf(email.id)).map((d) => d.status).sort()).toEqual(['bounced', 'sent']);
  expect((await t.db.email.findUniqueOrThrow({ where: { id: email.id } })).status).toBe('bounced');
});

test('the same report twice in one batch: recorded once, one event, one suppression', async () => {
  const email = await sentEmail(['twice@example.org']);
  const results = await Promise.all([store.apply(report(email, 'twice@example.org')), store.apply(report(email, 'twice@example.org'))]);
  expect(results.map((r) => r.recorded.length).sort()).toEqual([0, 1]);
  expect(results.flatMap((r) => r.deliveryIds)).toHaveLength(1);
  expect(await deliveriesOf(email.id)).toHaveLength(1);
  expect(await t.db.emailReport.count({ where: { emailId: email.id } })).toBe(1);
  expect(await t.db.suppression.count({ where: { address: 'twice@example.org' } })).toBe(1);
});

test('unusable messages of concurrent sessions are stored together, each with its reason', async () => {
  const base = { applicationId: null, emailId: null, detail: 'd', mailFrom: '', remoteAddress: '127.0.0.1', size: 4, sample: 'From: x', receivedAt: new Date() };
  await Promise.all([
    store.storeUnusable({ ...base, reason: 'not_a_report', rcptTo: ['bounces+a@x.test'] }),
    store.storeUnusable({ ...base, reason: 'bad_tag', rcptTo: ['bounces+b@x.test', 'c@x.test'] }),
  ]);
  const rows = await t.db.inboundMessage.findMany({ where: { reason: { in: ['not_a_report', 'bad_tag'] } }, orderBy: { reason: 'asc' } });
  expect(rows.map((r) => [r.reason, r.rcptTo, r.sample])).toEqual([
    ['bad_tag', ['bounces+b@x.test', 'c@x.test'], 'From: x'],
    ['not_a_report', ['bounces+a@x.test'], 'From: x'],
  ]);
});
