-- Emails accepted together by POST /v1/emails/batch are delivered by one job (queue
-- email-batch-delivery) instead of one job each. The row names that job, so the sweeper can tell
-- a row whose batch job is still alive from an orphan. A nullable column without a default:
-- adding it rewrites nothing.
ALTER TABLE "emails" ADD COLUMN "deliveryBatchId" UUID;
