/** A delivery and its attempts as the API shows them (GET /v1/events/:id, the listings). */
import type { Prisma } from '../db/client';

const iso = (d: Date | null) => d?.toISOString() ?? null;

type DeliveryRow = Prisma.WebhookDeliveryGetPayload<object> & { endpoint: { url: string } };
type AttemptRow = Prisma.WebhookAttemptGetPayload<object>;

export function deliveryFields(d: DeliveryRow) {
  return {
    id: d.id,
    eventId: d.eventId,
    endpointId: d.endpointId,
    url: d.endpoint.url,
    status: d.status,
    attemptCount: d.attemptCount,
    nextAttemptAt: iso(d.nextAttemptAt),
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    deliveredAt: iso(d.deliveredAt),
  };
}

export function attemptFields(a: AttemptRow) {
  return { number: a.number, startedAt: a.startedAt.toISOString(), durationMs: a.durationMs, statusCode: a.statusCode, responseBody: a.responseBody, error: a.error };
}
