/**
 * Query and response shapes of the webhook listings (events, an endpoint's deliveries, one
 * delivery, endpoint stats), shaped like Svix's: newest first, opaque cursors, ISO 8601 bounds.
 * The same zod schemas validate the query strings and generate the OpenAPI document.
 */
import { z } from 'zod';
import { decimalInt } from '../shared/text';
import { attemptView, deliveryView, eventType, LIMITS } from './schemas';

const timestamp = z.string().datetime();
/** A bound of a time window: ISO 8601 with a zone, from 1970 on. */
export const instant = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-11-30T12:00:00Z' })
  .refine((v) => Date.parse(v) >= 0, 'must be a real date from 1970 on')
  .transform((v) => new Date(v))
  .meta({ example: '2026-11-30T12:00:00Z' });
const cursor = z.string().max(200).optional().meta({ description: 'nextCursor of the previous page, unchanged' });
const limit = decimalInt(1, LIMITS.pageSize).default(50);

const windowRefine = <T extends { since?: Date; until?: Date }>(q: T) => !(q.since && q.until && q.since >= q.until);
const windowProblem = { message: 'since must be before until', path: ['since'] };

export const eventListQuery = z
  .strictObject({
    type: eventType.optional().meta({ description: 'only events of this type' }),
    since: instant.optional().meta({ description: 'only events created at or after this time' }),
    until: instant.optional().meta({ description: 'only events created before this time' }),
    withPayload: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
    limit,
    cursor,
  })
  .refine(windowRefine, windowProblem);
export type EventListQuery = z.infer<typeof eventListQuery>;

export const deliveryStatusFilter = z.enum(['pending', 'delivered', 'failed']);

export const deliveryListQuery = z
  .strictObject({
    status: deliveryStatusFilter.optional(),
    since: instant.optional().meta({ description: 'only deliveries created at or after this time' }),
    until: instant.optional().meta({ description: 'only deliveries created before this time' }),
    limit,
    cursor,
  })
  .refine(windowRefine, windowProblem);
export type DeliveryListQuery = z.infer<typeof deliveryListQuery>;

export const eventSummary = z
  .object({
    id: z.uuid(),
    type: z.string(),
    createdAt: timestamp,
    payload: z.record(z.string(), z.unknown()).optional().meta({ description: 'with withPayload=true' }),
  })
  .meta({ id: 'EventSummary' });
export const eventList = z.object({ data: z.array(eventSummary), nextCursor: z.string().nullable() }).meta({ id: 'EventList' });

export const deliverySummary = deliveryView.omit({ attempts: true }).extend({ eventType: z.string() }).meta({ id: 'WebhookDeliverySummary' });
export const deliveryList = z.object({ data: z.array(deliverySummary), nextCursor: z.string().nullable() }).meta({ id: 'WebhookDeliveryList' });
export const deliveryDetail = deliverySummary.extend({ attempts: z.array(attemptView) }).meta({ id: 'WebhookDeliveryDetail' });

const outcomeCounts = z
  .object({ delivered: z.number().int(), failed: z.number().int(), pending: z.number().int(), total: z.number().int() })
  .meta({ id: 'WebhookOutcomeCounts', description: 'Deliveries created in the window, by their current status' });

export const endpointStats = z
  .object({
    endpointId: z.uuid(),
    last24h: outcomeCounts,
    last7d: outcomeCounts,
    lastSuccessAt: timestamp.nullable().meta({ description: 'When the newest delivered delivery got its 2xx' }),
    failingSince: timestamp.nullable().meta({ description: 'Start of the current unbroken run of failed attempts' }),
    attemptDurationMs: z
      .object({ p50: z.number().nullable(), p95: z.number().nullable(), samples: z.number().int() })
      .meta({ description: 'Attempts of the newest 10,000 deliveries of the last 24 h' }),
  })
  .meta({ id: 'WebhookEndpointStats' });
