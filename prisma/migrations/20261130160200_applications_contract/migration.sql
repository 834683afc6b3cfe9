-- easeemail:no-transaction
-- Applications, step 3 of 3: NOT NULL, foreign keys validated, indexes with the application id
-- first. Runs outside a transaction, one statement at a time, so that no lock is held longer
-- than its statement needs:
-- - NOT NULL without a long exclusive lock: a CHECK constraint is added NOT VALID (instant),
--   validated under SHARE UPDATE EXCLUSIVE (reads and writes go on during the scan), and then
--   SET NOT NULL uses it instead of scanning again (PostgreSQL 12+).
-- - Foreign keys were added NOT VALID in step 1; VALIDATE scans without blocking writes.
-- - Indexes on big tables are built CONCURRENTLY (writes go on), then the ones they replace are
--   dropped; small tables get theirs at once (below).
-- Every statement can be run again after a failure (IF [NOT] EXISTS, checks in the DO block).
-- A CONCURRENTLY build that fails leaves an INVALID index: drop it before running again
-- (README, upgrade notes).
DO $$
DECLARE
  tbl text;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['emails', 'email_attempts', 'templates', 'webhook_endpoints', 'events', 'webhook_deliveries', 'idempotency_records'] LOOP
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = tbl AND column_name = 'applicationId' AND is_nullable = 'NO') THEN
      EXECUTE format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I', tbl, tbl || '_applicationId_not_null');
      EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK ("applicationId" IS NOT NULL) NOT VALID', tbl, tbl || '_applicationId_not_null');
      COMMIT;
      EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', tbl, tbl || '_applicationId_not_null');
      COMMIT;
      EXECUTE format('ALTER TABLE %I ALTER COLUMN "applicationId" SET NOT NULL', tbl);
      EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tbl, tbl || '_applicationId_not_null');
      COMMIT;
    END IF;
  END LOOP;
  -- API keys: every key belongs to an application, except platform keys (scope platform:admin).
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'api_keys_application_or_platform' AND conrelid = 'api_keys'::regclass) THEN
    ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_application_or_platform"
      CHECK ("applicationId" IS NOT NULL OR 'platform:admin' = ANY ("scopes")) NOT VALID;
    COMMIT;
  END IF;
  ALTER TABLE "api_keys" VALIDATE CONSTRAINT "api_keys_application_or_platform";
  COMMIT;
  FOREACH tbl IN ARRAY ARRAY['api_keys', 'emails', 'email_attempts', 'templates', 'webhook_endpoints', 'events', 'webhook_deliveries', 'idempotency_records'] LOOP
    EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', tbl, tbl || '_applicationId_fkey');
    COMMIT;
  END LOOP;
END $$;

-- Small tables (under 100,000 rows, counted with a bound) get their indexes here, built plainly
-- (a write pause well under a second): CONCURRENTLY waits for every older snapshot in the
-- database, which on a shared server (or next to a runner waiting for the migration lock) can
-- take long or deadlock. The CONCURRENTLY statements below then find the index and do nothing;
-- on a big table they build it without blocking writes.
DO $$
DECLARE
  ix record;
  small_table constant int := 100000;
  n int;
BEGIN
  FOR ix IN SELECT * FROM (VALUES
      ('api_keys', 'api_keys_applicationId_idx', 'CREATE INDEX IF NOT EXISTS "api_keys_applicationId_idx" ON "api_keys"("applicationId")', NULL),
      ('emails', 'emails_applicationId_createdAt_id_idx', 'CREATE INDEX IF NOT EXISTS "emails_applicationId_createdAt_id_idx" ON "emails"("applicationId", "createdAt" DESC, "id" DESC)', 'emails_createdAt_id_idx'),
      ('templates', 'templates_applicationId_name_key', 'CREATE UNIQUE INDEX IF NOT EXISTS "templates_applicationId_name_key" ON "templates"("applicationId", "name")', 'templates_name_key'),
      ('webhook_endpoints', 'webhook_endpoints_applicationId_createdAt_id_idx', 'CREATE INDEX IF NOT EXISTS "webhook_endpoints_applicationId_createdAt_id_idx" ON "webhook_endpoints"("applicationId", "createdAt" DESC, "id" DESC)', NULL),
      ('events', 'events_applicationId_type_createdAt_idx', 'CREATE INDEX IF NOT EXISTS "events_applicationId_type_createdAt_idx" ON "events"("applicationId", "type", "createdAt")', 'events_type_createdAt_idx'),
      ('idempotency_records', 'idempotency_records_applicationId_apiKeyId_scope_key_key', 'CREATE UNIQUE INDEX IF NOT EXISTS "idempotency_records_applicationId_apiKeyId_scope_key_key" ON "idempotency_records"("applicationId", "apiKeyId", "scope", "key")', 'idempotency_records_apiKeyId_scope_key_key')
    ) AS v(tbl, name, ddl, replaces)
  LOOP
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I LIMIT %s) s', ix.tbl, small_table) INTO n;
    IF n < small_table THEN
      EXECUTE ix.ddl;
      IF ix.replaces IS NOT NULL THEN
        EXECUTE format('DROP INDEX IF EXISTS %I', ix.replaces);
      END IF;
      COMMIT;
    END IF;
  END LOOP;
END $$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS "api_keys_applicationId_idx" ON "api_keys"("applicationId");

CREATE INDEX CONCURRENTLY IF NOT EXISTS "emails_applicationId_createdAt_id_idx" ON "emails"("applicationId", "createdAt" DESC, "id" DESC);
DROP INDEX CONCURRENTLY IF EXISTS "emails_createdAt_id_idx";

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "templates_applicationId_name_key" ON "templates"("applicationId", "name");
DROP INDEX CONCURRENTLY IF EXISTS "templates_name_key";

CREATE INDEX CONCURRENTLY IF NOT EXISTS "webhook_endpoints_applicationId_createdAt_id_idx" ON "webhook_endpoints"("applicationId", "createdAt" DESC, "id" DESC);

CREATE INDEX CONCURRENTLY IF NOT EXISTS "events_applicationId_type_createdAt_idx" ON "events"("applicationId", "type", "createdAt");
DROP INDEX CONCURRENTLY IF EXISTS "events_type_createdAt_idx";

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "idempotency_records_applicationId_apiKeyId_scope_key_key" ON "idempotency_records"("applicationId", "apiKeyId", "scope", "key");
DROP INDEX CONCURRENTLY IF EXISTS "idempotency_records_apiKeyId_scope_key_key";
