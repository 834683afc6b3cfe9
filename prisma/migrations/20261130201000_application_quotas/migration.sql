-- Per-application quotas (issue 14): emails accepted and events published per UTC minute and per
-- UTC day. Expand only: nullable columns without a default are a metadata change (no table
-- rewrite, a brief lock on a table of tens of rows); null means "no quota", so the previous
-- release, which neither reads nor writes them, keeps working during the rollout. The counters
-- themselves live in Redis (<REDIS_PREFIX>:quota:...).
ALTER TABLE "applications" ADD COLUMN "emailQuotaPerMinute" INTEGER;
ALTER TABLE "applications" ADD COLUMN "emailQuotaPerDay" INTEGER;
ALTER TABLE "applications" ADD COLUMN "eventQuotaPerMinute" INTEGER;
ALTER TABLE "applications" ADD COLUMN "eventQuotaPerDay" INTEGER;
