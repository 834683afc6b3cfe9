-- Applications (tenants), step 1 of 3: expand. Metadata-only changes, so every lock taken here
-- is held for milliseconds: the new table, the `default` application, a nullable
-- "applicationId" on api keys and every resource table, and foreign keys NOT VALID (checked for
-- new rows at once, for existing rows by step 3 without blocking writes).
--
-- The column default is the `default` application, and it is set AFTER the column is added, so
-- existing rows stay NULL (step 2 backfills them in batches) while rows written by the previous
-- release during the rollout (it does not know the column) land in `default`, where its keys
-- live. A later release drops these defaults (contract), once no pod of this one is left.

CREATE TABLE "applications" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "rateLimitPerSecond" INTEGER,
    "rateLimitBurst" INTEGER,
    "defaultFrom" TEXT,
    "allowedSenderDomains" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "retentionDays" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disabledAt" TIMESTAMP(3),

    CONSTRAINT "applications_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "applications_name_key" ON "applications"("name");

-- The well-known id of `default` (app/applications/default.ts) lets the column defaults below
-- name it without a look-up.
INSERT INTO "applications" ("id", "name", "description")
VALUES ('00000000-0000-4000-8000-000000000001', 'default', 'Everything created before applications existed');

ALTER TABLE "api_keys" ADD COLUMN "applicationId" UUID;
ALTER TABLE "emails" ADD COLUMN "applicationId" UUID;
ALTER TABLE "email_attempts" ADD COLUMN "applicationId" UUID;
ALTER TABLE "templates" ADD COLUMN "applicationId" UUID;
ALTER TABLE "webhook_endpoints" ADD COLUMN "applicationId" UUID;
ALTER TABLE "events" ADD COLUMN "applicationId" UUID;
ALTER TABLE "webhook_deliveries" ADD COLUMN "applicationId" UUID;
ALTER TABLE "idempotency_records" ADD COLUMN "applicationId" UUID;

ALTER TABLE "api_keys" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';
ALTER TABLE "emails" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';
ALTER TABLE "email_attempts" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';
ALTER TABLE "templates" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';
ALTER TABLE "webhook_endpoints" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';
ALTER TABLE "events" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';
ALTER TABLE "webhook_deliveries" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';
ALTER TABLE "idempotency_records" ALTER COLUMN "applicationId" SET DEFAULT '00000000-0000-4000-8000-000000000001';

ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "emails" ADD CONSTRAINT "emails_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "email_attempts" ADD CONSTRAINT "email_attempts_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "templates" ADD CONSTRAINT "templates_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "events" ADD CONSTRAINT "events_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "idempotency_records" ADD CONSTRAINT "idempotency_records_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
