-- Retention (issue 13) and the event listing: an application's events by time, newest first
-- (GET /v1/events without a type; the retention sweep walks it from the old end), and finished
-- emails that still carry a body, by application and age (a partial index that empties as
-- retention drops bodies).
CREATE INDEX "events_applicationId_createdAt_id_idx" ON "events"("applicationId", "createdAt" DESC, "id" DESC);

CREATE INDEX "emails_with_body_applicationId_createdAt_idx" ON "emails"("applicationId", "createdAt")
  WHERE "text" IS NOT NULL OR "html" IS NOT NULL OR "attachments" IS NOT NULL OR "templateData" IS NOT NULL;
