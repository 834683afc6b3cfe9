-- easeemail:no-transaction
-- Applications, step 2 of 3: every existing row goes to the `default` application.
--
-- Bounded batches, each committed on its own (this migration runs outside a transaction; see
-- app/db/migrate.ts), so no batch holds row locks for long: the worker's status updates and the
-- api's writes wait at most for one batch of 5,000 rows (tens of milliseconds), never for the
-- whole table. Batches walk the primary key (an index range per batch instead of a scan for the
-- remaining NULLs each time). Re-running is harmless: only NULLs are written.
DO $$
DECLARE
  tbl text;
  last_id uuid;
  batch_end uuid;
  default_app constant uuid := '00000000-0000-4000-8000-000000000001';
  batch_size constant int := 5000;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['api_keys', 'templates', 'webhook_endpoints', 'events', 'emails', 'email_attempts', 'webhook_deliveries', 'idempotency_records'] LOOP
    last_id := '00000000-0000-0000-0000-000000000000';
    LOOP
      EXECUTE format('SELECT id FROM (SELECT id FROM %I WHERE id > $1 ORDER BY id LIMIT $2) b ORDER BY id DESC LIMIT 1', tbl)
        INTO batch_end USING last_id, batch_size;
      EXIT WHEN batch_end IS NULL;
      EXECUTE format('UPDATE %I SET "applicationId" = $1 WHERE id > $2 AND id <= $3 AND "applicationId" IS NULL', tbl)
        USING default_app, last_id, batch_end;
      COMMIT;
      last_id := batch_end;
    END LOOP;
  END LOOP;
END $$;
