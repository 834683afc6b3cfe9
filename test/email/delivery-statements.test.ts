/**
 * The worker's claim and outcome statements (app/email/delivery-statements.ts), on a session set
 * up as the worker's statement pool is (db/connection.ts statementPoolSettings), read only the
 * rows of their batch however many other emails the tables hold:
 * - with the plan made while the tables were empty and kept since (a new installation; where
 *   autovacuum is off, for good);
 * - with no statistics, and with statistics from before a burst of queued emails.
 * Checked on the plan PostgreSQL keeps for the prepared statement (the generic plan), run with
 * EXPLAIN ANALYZE: every scan of emails and email_attempts or of their indexes returns at most
 * the batch's rows (twice that from an index, which may still list the version of a row that the
 * claim replaced). A sequential scan or a status-index scan would read thousands of rows here.
 */
import { Pool, type PoolClient } from 'pg';
import { DEFAULT_APPLICATION_ID } from '../../app/applications/default';
import { statementPoolSettings } from '../../app/db/connection';
import { claimStatement, outcomeStatement, type OutcomeInput } from '../../app/email/delivery-statements';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';

let t: TestEnvironment;
let pool: Pool;
const BATCH = 8;
const LEASE_MS = 60_000;

beforeAll(async () => {
  t = await createTestEnvironment('delivery_plans');
  pool = new Pool(statementPoolSettings(t.config.databaseUrl, 2));
});
afterAll(async () => {
  await pool?.end();
  await t?.cleanup();
});

/** Other emails: sent (with their attempts) and sending (other workers' attempts under way). */
async function fillTables(): Promise<void> {
  await pool.query(`
    INSERT INTO "emails" ("id", "status", "from", "to", "cc", "bcc", "replyTo", "subject", "text", "tags", "attemptCount", "createdAt", "updatedAt", "messageId")
    SELECT gen_random_uuid(), (CASE WHEN g % 2 = 0 THEN 'sent' ELSE 'sending' END)::"EmailStatus",
           'shop@example.com', '{a@example.com}', '{}', '{}', '{}', 'Your order', 'hello', '{}', 1,
           timezone('UTC', now()), timezone('UTC', now()), '<m@example.com>'
    FROM generate_series(1, 4000) g`);
  await pool.query(`
    INSERT INTO "email_attempts" ("id", "emailId", "number", "startedAt", "finishedAt", "outcome")
    SELECT gen_random_uuid(), "id", 1, "updatedAt", "updatedAt", 'sent' FROM "emails" WHERE "status" = 'sent' AND "subject" = 'Your order'`);
}

async function queuedEmails(n: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(`
    INSERT INTO "emails" ("id", "status", "from", "to", "cc", "bcc", "replyTo", "subject", "text", "tags", "createdAt", "updatedAt", "messageId")
    SELECT gen_random_uuid(), 'queued', 'shop@example.com', '{b@example.com}', '{}', '{}', '{}', 'Batch', 'hello', '{}', timezone('UTC', now()), timezone('UTC', now()), '<b@example.com>'
    FROM generate_series(1, ${n}) RETURNING "id"::text AS "id"`);
  return rows.map((r) => r.id);
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

/** Rows each scan of emails or email_attempts, or of one of their indexes, returned over the plan. */
function scansOfEmailTables(node: PlanNode, out: { node: string; rows: number }[] = []) {
  const on = node['Relation Name'] ?? node['Index Name'] ?? '';
  if (/Scan/.test(node['Node Type']) && /^emails?(_|$)/.test(on)) out.push({ node: `${node['Node Type']} on ${on}`, rows: node['Actual Rows'] * node['Actual Loops'] });
  for (const child of node.Plans ?? []) scansOfEmailTables(child, out);
  return out;
}

type Statement = { text: string; values: unknown[] };
const literal = (v: unknown) => (Array.isArray(v) ? `'{${v.join(',')}}'` : `'${String(v).replace(/'/g, "''")}'`);

/** A statement prepared as the worker's pool prepares it, with its generic plan kept from the first run (as after its first runs). */
async function prepare(client: PoolClient, name: string, sql: Statement): Promise<void> {
  await client.query('SET plan_cache_mode = force_generic_plan');
  await client.query(`PREPARE ${name} (${sql.values.map(() => 'unknown').join(', ')}) AS ${sql.text}`);
}

/** Runs a prepared statement on its kept plan; returns the plan's scans of the email tables. */
async function scansOf(client: PoolClient, name: string, sql: Statement) {
  const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${name} (${sql.values.map(literal).join(', ')})`);
  return scansOfEmailTables((rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan);
}

/** Claims a new batch of queued emails, then records them sent; returns the scans of both statements. */
async function claimAndFinish(client: PoolClient, prepared: 'prepared' | 'prepare now') {
  const ids = await queuedEmails(BATCH);
  const claim = claimStatement(ids, LEASE_MS);
  if (prepared === 'prepare now') await prepare(client, 'claim', claim);
  const claimScans = await scansOf(client, 'claim', claim);
  const { rows: claimed } = await client.query<{ id: string; attemptCount: number; startedAt: Date }>(
    `SELECT "id"::text AS "id", "attemptCount", "updatedAt" AS "startedAt" FROM "emails" WHERE "id" = ANY ($1::uuid[]) AND "status" = 'sending'`,
    [ids],
  );
  expect(claimed).toHaveLength(BATCH);

  const at = new Date();
  const input: OutcomeInput[] = claimed.map((e) => ({
    id: e.id,
    applicationId: DEFAULT_APPLICATION_ID,
    number: e.attemptCount,
    status: 'sent',
    outcome: 'sent',
    startedAt: e.startedAt,
    at,
    smtpResponse: '250 ok',
    error: null,
    eventType: 'email.sent',
    payload: { emailId: e.id },
    apiKeyId: null,
    suppressedRecipients: [],
  }));
  const outcome = outcomeStatement(input);
  if (prepared === 'prepare now') await prepare(client, 'outcome', outcome);
  const outcomeScans = await scansOf(client, 'outcome', outcome);
  const { rows: written } = await client.query(`SELECT count(*)::int AS n FROM "email_attempts" WHERE "emailId" = ANY ($1::uuid[]) AND "outcome" = 'sent'`, [ids]);
  expect(written[0].n).toBe(BATCH);
  expect(claimScans.length).toBeGreaterThan(0);
  expect(outcomeScans.length).toBeGreaterThan(0);
  return [...claimScans, ...outcomeScans];
}

const tooManyRows = (scans: { node: string; rows: number }[]) => scans.filter((s) => s.rows > 2 * BATCH);

test('plans made while the tables were empty, kept after they filled, read only the batch', async () => {
  const client = await pool.connect();
  try {
    expect(tooManyRows(await claimAndFinish(client, 'prepare now'))).toEqual([]); // planned and run on empty tables
    await fillTables();
    await queuedEmails(2_000);
    expect(tooManyRows(await claimAndFinish(client, 'prepared'))).toEqual([]);
  } finally {
    await client.query('DEALLOCATE ALL');
    client.release();
  }
});

for (const statistics of ['without statistics', 'with statistics from before a burst'] as const) {
  test(`claim and outcome read only their batch's rows (${statistics})`, async () => {
    if (statistics !== 'without statistics') await pool.query('ANALYZE "emails", "email_attempts"');
    await queuedEmails(2_000); // a backlog the statistics do not know of
    const client = await pool.connect();
    try {
      expect(tooManyRows(await claimAndFinish(client, 'prepare now'))).toEqual([]);
    } finally {
      await client.query('DEALLOCATE ALL');
      client.release();
    }
  });
}
