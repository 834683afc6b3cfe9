/**
 * Upgrading a database from before applications: the data written by the previous release
 * (including more rows than one backfill batch) ends up under `default`, the old API keys keep
 * working, and the previous release's way of writing (no applicationId) still works during the
 * rollout.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startApi, type RunningApi } from '../../app/api';
import { DEFAULT_APPLICATION_ID } from '../../app/applications/default';
import { hashApiKey } from '../../app/auth/api-keys';
import { loadConfig } from '../../app/config';
import { migrate, readLocalMigrations, splitStatements } from '../../app/db/migrate';
import { createLogger } from '../../app/log';
import { MIGRATIONS_DIR } from '../../app/paths';
import { dropSchema, schemaUrl, uniqueName } from '../support/isolation';
import { REDIS_URL } from '../support/env';

const FIRST_APPLICATIONS_MIGRATION = '20261130160000_applications_expand';
const RESOURCE_TABLES = ['emails', 'email_attempts', 'templates', 'webhook_endpoints', 'events', 'webhook_deliveries', 'idempotency_records'];
const BORN_PER_APPLICATION = ['email_reports', 'suppressions', 'webhook_recoveries', 'event_types'];
/** More than one backfill batch (5,000 rows), so the batch loop is exercised. */
const OLD_EMAILS = 12_345;
const OLD_KEY = 'ee_key_from_before_applications_0123456789';

const schema = uniqueName('mig_apps');
const databaseUrl = schemaUrl(schema);
let oldMigrations: string;
let sql: Client;
let api: RunningApi | undefined;

async function q<T extends object = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await sql.query(text, params)).rows as T[];
}

beforeAll(async () => {
  // The migrations of the release before applications: everything up to the first of them.
  oldMigrations = mkdtempSync(path.join(tmpdir(), 'migrations-old-'));
  for (const m of readLocalMigrations(MIGRATIONS_DIR).filter((m) => m.name < FIRST_APPLICATIONS_MIGRATION)) {
    cpSync(path.join(MIGRATIONS_DIR, m.name), path.join(oldMigrations, m.name), { recursive: true });
  }
  await migrate({ databaseUrl, dir: oldMigrations });
  const u = new URL(databaseUrl);
  u.searchParams.delete('schema');
  sql = new Client({ connectionString: u.toString(), options: `-c search_path="${schema}"` });
  await sql.connect();
});
afterAll(async () => {
  await api?.lifecycle.shutdown('test end');
  await sql?.end();
  await dropSchema(schema);
  rmSync(oldMigrations, { recursive: true, force: true });
});

/** What the previous release wrote: a key, a template, emails with attempts, an endpoint, an event and its delivery, an idempotency record. */
async function writeOldData() {
  await q(`INSERT INTO api_keys (id, name, prefix, "keyHash", scopes) VALUES (gen_random_uuid(), 'old', $1, $2, '{emails:send,emails:read,templates:manage}')`, [OLD_KEY.slice(0, 10), hashApiKey(OLD_KEY)]);
  await q(`INSERT INTO templates (id, name, subject, text, "updatedAt") VALUES (gen_random_uuid(), 'welcome', 'Hi {{name}}', 'Hello', now())`);
  await q(
    `INSERT INTO emails (id, status, "from", "to", cc, bcc, "replyTo", subject, tags, "updatedAt", "createdAt")
     SELECT gen_random_uuid(), 'sent', 'a@example.com', '{b@example.com}', '{}', '{}', '{}', 'old ' || i, '{}', now(), now() - i * interval '1 second'
     FROM generate_series(1, $1::int) i`,
    [OLD_EMAILS],
  );
  await q(`INSERT INTO email_attempts (id, "emailId", number, "startedAt") SELECT gen_random_uuid(), id, 1, now() FROM emails LIMIT 100`);
  await q(`INSERT INTO webhook_endpoints (id, url, "eventTypes", "secretEncrypted", "updatedAt") VALUES (gen_random_uuid(), 'https://example.com/hook', '{}', 'x', now())`);
  await q(`INSERT INTO events (id, type, payload) VALUES (gen_random_uuid(), 'order.paid', '{}')`);
  await q(`INSERT INTO webhook_deliveries (id, "eventId", "endpointId", "updatedAt") SELECT gen_random_uuid(), e.id, p.id, now() FROM events e, webhook_endpoints p`);
  await q(
    `INSERT INTO idempotency_records (id, "apiKeyId", key, scope, "requestHash", "responseStatus", "responseBody", "expiresAt")
     SELECT gen_random_uuid(), id, 'k1', 'POST /v1/emails', 'h', 202, '{}', now() + interval '1 day' FROM api_keys`,
  );
}

describe('upgrading a database from before applications', () => {
  it('moves every row and key to `default`, then enforces NOT NULL, the foreign keys and the new indexes', async () => {
    await writeOldData();
    const result = await migrate({ databaseUrl, dir: MIGRATIONS_DIR });
    expect(result.applied).toEqual(expect.arrayContaining([FIRST_APPLICATIONS_MIGRATION]));

    expect(await q(`SELECT id, name FROM applications`)).toEqual([{ id: DEFAULT_APPLICATION_ID, name: 'default' }]);
    for (const table of ['api_keys', ...RESOURCE_TABLES]) {
      const rows = await q<{ app: string | null; n: number }>(`SELECT "applicationId" AS app, count(*)::int AS n FROM ${table} GROUP BY 1`);
      expect({ table, rows }).toEqual({ table, rows: [{ app: DEFAULT_APPLICATION_ID, n: expect.any(Number) }] });
    }
    expect(await q(`SELECT count(*)::int AS n FROM emails WHERE "applicationId" = $1`, [DEFAULT_APPLICATION_ID])).toEqual([{ n: OLD_EMAILS }]);

    const columns = await q<{ table_name: string; is_nullable: string }>(
      `SELECT table_name, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'applicationId' ORDER BY table_name`,
      [schema],
    );
    expect(Object.fromEntries(columns.map((c) => [c.table_name, c.is_nullable]))).toEqual({
      api_keys: 'YES', // platform keys have none
      ...Object.fromEntries(RESOURCE_TABLES.map((t) => [t, 'NO'])),
      // Tables born after applications are per application from their first migration.
      ...Object.fromEntries(BORN_PER_APPLICATION.map((t) => [t, 'NO'])),
      inbound_messages: 'YES', // mail that matches no email of ours has no application
    });
    // Every constraint validated, none left NOT VALID; no index left invalid by a concurrent build.
    expect(await q(`SELECT conname FROM pg_constraint WHERE connamespace = $1::regnamespace AND NOT convalidated`, [schema])).toEqual([]);
    expect(await q(`SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = $1::regnamespace AND NOT i.indisvalid`, [schema])).toEqual([]);
    const indexes = (await q<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1`, [schema])).map((r) => r.indexdef);
    expect(indexes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/UNIQUE INDEX "templates_applicationId_name_key" .*\("applicationId", name\)/),
        expect.stringMatching(/"emails_applicationId_createdAt_id_idx" .*\("applicationId", "createdAt" DESC, id DESC\)/),
        expect.stringMatching(/UNIQUE INDEX "idempotency_records_applicationId_apiKeyId_scope_key_key" .*\("applicationId", "apiKeyId", scope, key\)/),
      ]),
    );
    expect(indexes.join('\n')).not.toMatch(/"templates_name_key"|"emails_createdAt_id_idx"/);

    // A key with no application must be a platform key.
    await expect(q(`INSERT INTO api_keys (id, name, prefix, "keyHash", scopes, "applicationId") VALUES (gen_random_uuid(), 'x', 'x', 'x', '{admin}', NULL)`)).rejects.toThrow(/api_keys_application_or_platform/);
  });

  it('still takes the previous release\'s writes during the rollout: they land in `default`', async () => {
    const [row] = await q<{ applicationId: string }>(
      `INSERT INTO emails (id, status, "from", "to", cc, bcc, "replyTo", subject, tags, "updatedAt")
       VALUES (gen_random_uuid(), 'queued', 'a@example.com', '{b@example.com}', '{}', '{}', '{}', 'from an old pod', '{}', now()) RETURNING "applicationId"`,
    );
    expect(row.applicationId).toBe(DEFAULT_APPLICATION_ID);
    // Template names are unique per application now; the old names stay unique within `default`.
    await expect(q(`INSERT INTO templates (id, name, subject, "updatedAt") VALUES (gen_random_uuid(), 'welcome', 's', now())`)).rejects.toThrow(/templates_applicationId_name_key/);
  });

  it('the old key keeps working and sees the old data', async () => {
    const config = loadConfig({ DATABASE_URL: databaseUrl, REDIS_URL, REDIS_PREFIX: uniqueName('mig_apps'), PORT: '0', HOST: '127.0.0.1', ENCRYPTION_KEY: 'a'.repeat(64), LOG_LEVEL: 'silent' });
    api = await startApi(config, createLogger({ level: 'silent' }));
    const res = await fetch(`http://127.0.0.1:${api.port}/v1/emails?limit=3`, { headers: { authorization: `Bearer ${OLD_KEY}` } });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { data: { subject: string }[] };
    expect(page.data.map((e) => e.subject)).toEqual(['from an old pod', 'old 1', 'old 2']);
    const templates = await fetch(`http://127.0.0.1:${api.port}/v1/templates/welcome`, { headers: { authorization: `Bearer ${OLD_KEY}` } });
    expect(templates.status).toBe(200);
  });
});

describe('statement splitting for migrations run outside a transaction', () => {
  it('splits at top-level semicolons only', () => {
    const script = [
      '-- easeemail:no-transaction',
      "DO $$ BEGIN PERFORM 1; COMMIT; END $$;",
      "CREATE INDEX CONCURRENTLY IF NOT EXISTS x ON t (a); -- trailing; comment",
      "SELECT ';' AS semi, $tag$ ; $tag$ AS dollar; /* ; */",
      '-- only a comment at the end;',
    ].join('\n');
    expect(splitStatements(script).map((s) => s.trim())).toEqual([
      '-- easeemail:no-transaction\nDO $$ BEGIN PERFORM 1; COMMIT; END $$;',
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS x ON t (a);',
      "-- trailing; comment\nSELECT ';' AS semi, $tag$ ; $tag$ AS dollar;",
    ]);
  });
});
