-- Event-type catalog (issue 13): an application's event types with an optional payload schema.
CREATE TABLE "event_types" (
    "id" UUID NOT NULL,
    "applicationId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "schema" JSONB,
    "version" INTEGER NOT NULL DEFAULT 1,
    "deprecated" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "event_types_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "event_types_applicationId_name_key" ON "event_types"("applicationId", "name");

ALTER TABLE "event_types" ADD CONSTRAINT "event_types_applicationId_fkey" FOREIGN KEY ("applicationId") REFERENCES "applications"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
