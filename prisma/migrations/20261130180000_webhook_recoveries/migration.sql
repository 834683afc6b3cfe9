-- Webhook recoveries (issue 13): re-sending an endpoint's failed deliveries of a window as a task.
CREATE TABLE "webhook_recoveries" (
    "id" UUID NOT NULL,
    "applicationId" UUID NOT NULL,
    "endpointId" UUID NOT NULL,
    "since" TIMESTAMP(3) NOT NULL,
    "until" TIMESTAMP(3) NOT NULL,
    "status" TEXT NOT NULL,
    "total" INTEGER,
    "done" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "afterCreatedAt" TIMESTAMP(3),
    "afterId" UUID,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),
    CONSTRAINT "webhook_recoveries_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "webhook_recoveries_applicationId_endpointId_createdAt_idx" ON "webhook_recoveries"("applicationId", "endpointId", "createdAt" DESC);

-- One queued or running recovery per endpoint: a second POST …/recover is refused, never doubled.
CREATE UNIQUE INDEX "webhook_recoveries_one_active_key" ON "webhook_recoveries"("endpointId") WHERE "status" IN ('queued', 'running');

ALTER TABLE "webhook_recoveries" ADD CONSTRAINT "webhook_recoveries_endpointId_fkey" FOREIGN KEY ("endpointId") REFERENCES "webhook_endpoints"("id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "webhook_recoveries" ADD CONSTRAINT "webhook_recoveries_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
