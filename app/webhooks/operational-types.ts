/**
 * The operational event types (operational-events.ts publishes them) and their payloads as JSON
 * Schemas for the event-type catalog. A leaf module: the fan-out (events.ts) and the catalog
 * read it without importing the publisher.
 */
export const OPERATIONAL_EVENT_TYPES = {
  endpointDisabled: 'webhook.endpoint.disabled',
  deliveryExhausted: 'webhook.delivery.exhausted',
} as const;

/** Types with this prefix are the service's own; clients cannot publish them. */
export const OPERATIONAL_EVENT_PREFIX = 'webhook.';

export function isOperationalEventType(type: string): boolean {
  return type.startsWith(OPERATIONAL_EVENT_PREFIX);
}

const nullableString = { type: ['string', 'null'] } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;

/** name → description and payload schema, for the catalog (GET /v1/event-types). */
export const OPERATIONAL_EVENT_CATALOG = [
  {
    name: OPERATIONAL_EVENT_TYPES.endpointDisabled,
    description: 'The service disabled one of your webhook endpoints (410 Gone, or every attempt failed for 5 days). Never sent to that endpoint.',
    schema: {
      type: 'object',
      required: ['endpointId', 'url', 'reason', 'disabledAt'],
      properties: {
        endpointId: { type: 'string', format: 'uuid' },
        url: { type: 'string' },
        reason: { type: 'string' },
        disabledAt: dateTime,
        failingSince: { ...nullableString, format: 'date-time' },
        causedByDeliveryId: { type: 'string', format: 'uuid' },
      },
    },
  },
  {
    name: OPERATIONAL_EVENT_TYPES.deliveryExhausted,
    description: 'A delivery used every attempt of the retry schedule and failed. Never sent to the endpoint it failed on.',
    schema: {
      type: 'object',
      required: ['deliveryId', 'eventId', 'eventType', 'endpointId', 'attempts', 'failedAt'],
      properties: {
        deliveryId: { type: 'string', format: 'uuid' },
        eventId: { type: 'string', format: 'uuid' },
        eventType: { type: 'string' },
        endpointId: { type: 'string', format: 'uuid' },
        url: { type: 'string' },
        attempts: { type: 'integer' },
        lastStatusCode: { type: ['integer', 'null'] },
        lastError: nullableString,
        failedAt: dateTime,
      },
    },
  },
] as const;
