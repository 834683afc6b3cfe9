-- easeemail:no-transaction
-- Retention of inbound_messages (issue 12). The sweep deletes an application's old rows through
-- "inbound_messages_applicationId_receivedAt_idx" (an index range scan), and the rows that name
-- no application ("applicationId" IS NULL) through this partial index: PostgreSQL does not take
-- IS NULL as fixing the first column of the composite index, so ORDER BY "receivedAt" there would
-- sort every old unowned row, and it preferred "inbound_messages_receivedAt_idx" with a filter,
-- which walks past every old row of every application to find the unowned ones.
-- Expand only: a new index, nothing dropped. Outside a transaction, as in
-- 20261130160200_applications_contract: a small table (under 100,000 rows) gets it at once, a
-- big one CONCURRENTLY, so the inbound role's inserts go on meanwhile. A CONCURRENTLY build that
-- fails leaves an INVALID index: drop it before running again, as for the contract migration
-- (README, "Upgrading to applications").
DO $$
DECLARE
  n int;
BEGIN
  SELECT count(*) INTO n FROM (SELECT 1 FROM "inbound_messages" LIMIT 100000) s;
  IF n < 100000 THEN
    CREATE INDEX IF NOT EXISTS "inbound_messages_unowned_receivedAt_idx" ON "inbound_messages"("receivedAt") WHERE "applicationId" IS NULL;
  END IF;
END $$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS "inbound_messages_unowned_receivedAt_idx" ON "inbound_messages"("receivedAt") WHERE "applicationId" IS NULL;
