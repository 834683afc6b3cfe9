-- Deliverability (issue 12): delivery reports on the email's timeline, the suppression list,
-- inbound mail kept for inspection, and two email statuses. Every table is per application
-- from the start. New tables and enum values only: the previous release never sees them.

-- ALTER TYPE ... ADD VALUE may run in a transaction (PostgreSQL 12+); nothing below uses the
-- new values in this transaction.
ALTER TYPE "EmailStatus" ADD VALUE IF NOT EXISTS 'bounced';
ALTER TYPE "EmailStatus" ADD VALUE IF NOT EXISTS 'suppressed';

CREATE TYPE "ReportKind" AS ENUM ('hard_bounce', 'soft_bounce', 'delayed', 'delivered', 'complaint');
CREATE TYPE "SuppressionReason" AS ENUM ('hard_bounce', 'complaint', 'manual');

CREATE TABLE "email_reports" (
    "id" UUID NOT NULL,
    "applicationId" UUID NOT NULL,
    "emailId" UUID NOT NULL,
    "kind" "ReportKind" NOT NULL,
    "recipient" TEXT NOT NULL,
    "status" TEXT,
    "diagnostic" TEXT,
    "dedupeKey" TEXT NOT NULL,
    "receivedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "email_reports_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "email_reports_emailId_dedupeKey_key" ON "email_reports"("emailId", "dedupeKey");
CREATE INDEX "email_reports_applicationId_receivedAt_idx" ON "email_reports"("applicationId", "receivedAt");
ALTER TABLE "email_reports" ADD CONSTRAINT "email_reports_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "email_reports" ADD CONSTRAINT "email_reports_emailId_fkey" FOREIGN KEY ("emailId") REFERENCES "emails"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "suppressions" (
    "id" UUID NOT NULL,
    "applicationId" UUID NOT NULL,
    "address" TEXT NOT NULL,
    "reason" "SuppressionReason" NOT NULL,
    "emailId" UUID,
    "detail" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "suppressions_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "suppressions_applicationId_address_key" ON "suppressions"("applicationId", "address");
CREATE INDEX "suppressions_applicationId_createdAt_id_idx" ON "suppressions"("applicationId", "createdAt" DESC, "id" DESC);
ALTER TABLE "suppressions" ADD CONSTRAINT "suppressions_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "suppressions" ADD CONSTRAINT "suppressions_emailId_fkey" FOREIGN KEY ("emailId") REFERENCES "emails"("id") ON DELETE SET NULL ON UPDATE CASCADE;

CREATE TABLE "inbound_messages" (
    "id" UUID NOT NULL,
    "applicationId" UUID,
    "emailId" UUID,
    "reason" TEXT NOT NULL,
    "detail" TEXT,
    "mailFrom" TEXT NOT NULL,
    "rcptTo" TEXT[],
    "remoteAddress" TEXT,
    "size" INTEGER NOT NULL,
    "sample" TEXT,
    "receivedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "inbound_messages_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "inbound_messages_receivedAt_idx" ON "inbound_messages"("receivedAt");
CREATE INDEX "inbound_messages_applicationId_receivedAt_idx" ON "inbound_messages"("applicationId", "receivedAt");
ALTER TABLE "inbound_messages" ADD CONSTRAINT "inbound_messages_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "inbound_messages" ADD CONSTRAINT "inbound_messages_emailId_fkey" FOREIGN KEY ("emailId") REFERENCES "emails"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- Who the worker left out of an attempt because they were suppressed.
ALTER TABLE "email_attempts" ADD COLUMN "suppressedRecipients" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[];
