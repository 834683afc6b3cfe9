-- Webhook operations (issue 13): per-endpoint rate limit, and the index for an endpoint's
-- deliveries filtered by status, newest first (also the newest success for the stats).
ALTER TABLE "webhook_endpoints" ADD COLUMN "rateLimit" INTEGER;

CREATE INDEX "webhook_deliveries_endpointId_status_createdAt_id_idx" ON "webhook_deliveries"("endpointId", "status", "createdAt" DESC, "id" DESC);
