/**
 * Request and response shapes of the webhook API (endpoints, events, deliveries), shaped like
 * Svix's. The same zod schemas validate requests and generate the OpenAPI document.
 */
import { z } from 'zod';
import { decimalInt, SINGLE_LINE_TOKEN } from '../shared/text';
import { endpointUrlProblem, MAX_URL_LENGTH } from './guard';
import { isOperationalEventType, OPERATIONAL_EVENT_PREFIX } from './operational-types';
import { secretProblem } from './secrets';

export const LIMITS = {
  eventTypeLength: 100,
  eventTypesPerEndpoint: 100,
  descriptionLength: 500,
  /** Serialized payload of one event. */
  payloadBytes: 256 * 1024,
  pageSize: 100,
  rateLimitPerSecond: 10_000,
} as const;

/** Event types the service publishes itself; clients cannot publish them. */
export const RESERVED_EVENT_PREFIX = 'email.';

export const eventType = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only')
  .max(LIMITS.eventTypeLength)
  .meta({ example: 'order.paid' });

const description = z.string().max(LIMITS.descriptionLength);

const rateLimit = z
  .number()
  .int()
  .min(1)
  .max(LIMITS.rateLimitPerSecond)
  .meta({ description: 'At most this many deliveries per second to this endpoint, across all workers; more wait (they are not failed)', example: 50 });

const urlField = (allowPrivateNetworks: boolean) =>
  z
    .string()
    .max(MAX_URL_LENGTH)
    // Refused, not cleaned: the URL parser would silently drop CR, LF and tab.
    .regex(SINGLE_LINE_TOKEN, 'must not contain whitespace or control characters (CR, LF, NUL, tab)')
    .superRefine((url, ctx) => {
      const problem = endpointUrlProblem(url, { allowPrivateNetworks });
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ description: 'http(s) URL that receives the POSTs; private and loopback addresses are refused', example: 'https://example.com/webhooks' });

const eventTypes = z
  .array(eventType)
  .max(LIMITS.eventTypesPerEndpoint)
  .refine((types) => new Set(types).size === types.length, 'must not repeat a type')
  .meta({ description: 'The event types this endpoint receives; empty means every type' });

/** The URL rule depends on WEBHOOK_ALLOW_PRIVATE_NETWORKS, so the body schemas are built per config. */
export function endpointSchemas(opts: { allowPrivateNetworks: boolean }) {
  const create = z
    .strictObject({
      url: urlField(opts.allowPrivateNetworks),
      eventTypes: eventTypes.default([]),
      description: description.optional(),
      enabled: z.boolean().default(true),
      rateLimit: rateLimit.optional(),
      secret: z
        .string()
        .superRefine((s, ctx) => {
          const problem = secretProblem(s);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional()
        .meta({ description: 'Bring your own secret (whsec_ + base64 of 24 to 64 bytes); one is generated when absent' }),
    })
    .meta({ id: 'WebhookEndpointCreate' });
  const update = z
    .strictObject({
      url: urlField(opts.allowPrivateNetworks).optional(),
      eventTypes: eventTypes.optional(),
      description: description.nullable().optional(),
      enabled: z.boolean().optional().meta({ description: 'true re-enables an endpoint that was disabled (clearing the reason)' }),
      rateLimit: rateLimit.nullable().optional().meta({ description: 'null removes the limit' }),
    })
    .refine((b) => Object.keys(b).length > 0, 'give at least one field to change')
    .meta({ id: 'WebhookEndpointUpdate' });
  return { create, update };
}

export type EndpointCreateInput = z.infer<ReturnType<typeof endpointSchemas>['create']>;
export type EndpointUpdateInput = z.infer<ReturnType<typeof endpointSchemas>['update']>;

const timestamp = z.string().datetime();

export const endpointView = z
  .object({
    id: z.uuid(),
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()),
    enabled: z.boolean(),
    disabledAt: timestamp.nullable(),
    disabledReason: z.string().nullable().meta({ description: 'Why the service disabled it (410 Gone, failing for 5 days) or that a user did' }),
    failingSince: timestamp.nullable().meta({ description: 'Start of the current unbroken run of failed attempts' }),
    rateLimit: z.number().int().nullable().meta({ description: 'Deliveries per second at most; null: no limit' }),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'WebhookEndpoint' });

export const secretView = z
  .object({
    secret: z.string().meta({ example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }),
    previousSecretExpiresAt: timestamp.nullable().meta({ description: 'Until then the previous secret also signs every message' }),
  })
  .meta({ id: 'WebhookEndpointSecret' });

export const listQuery = z.strictObject({
  limit: decimalInt(1, LIMITS.pageSize).default(50),
  cursor: z.uuid().optional().meta({ description: 'nextCursor of the previous page' }),
});

export const publishEventSchema = z
  .strictObject({
    type: eventType
      .refine((t) => !t.startsWith(RESERVED_EVENT_PREFIX), `types starting with "${RESERVED_EVENT_PREFIX}" are published by the service itself`)
      .refine((t) => !isOperationalEventType(t), `types starting with "${OPERATIONAL_EVENT_PREFIX}" are published by the service itself`),
    payload: z
      .record(z.string(), z.unknown())
      .refine((p) => Buffer.byteLength(JSON.stringify(p)) <= LIMITS.payloadBytes, `must serialize to at most ${LIMITS.payloadBytes} bytes`)
      .meta({ description: 'Any JSON object; receivers get it as `data`', example: { orderId: '42', amount: 1999 } }),
  })
  .meta({ id: 'EventPublish' });

export const deliveryStatus = z.enum(['pending', 'delivering', 'delivered', 'failed']).meta({ id: 'WebhookDeliveryStatus' });

export const attemptView = z
  .object({
    number: z.number().int(),
    startedAt: timestamp,
    durationMs: z.number().int(),
    statusCode: z.number().int().nullable(),
    responseBody: z.string().nullable().meta({ description: 'The first 2 KiB of the answer' }),
    error: z.string().nullable(),
  })
  .meta({ id: 'WebhookAttempt' });

export const deliveryView = z
  .object({
    id: z.uuid().meta({ description: 'Also the webhook-id header: the same across retries' }),
    eventId: z.uuid(),
    endpointId: z.uuid(),
    url: z.string(),
    status: deliveryStatus,
    attemptCount: z.number().int(),
    nextAttemptAt: timestamp.nullable(),
    lastStatusCode: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: timestamp,
    deliveredAt: timestamp.nullable(),
    attempts: z.array(attemptView),
  })
  .meta({ id: 'WebhookDelivery' });

export const eventView = z
  .object({
    id: z.uuid(),
    type: z.string(),
    payload: z.record(z.string(), z.unknown()),
    createdAt: timestamp,
    deliveries: z.array(deliveryView),
  })
  .meta({ id: 'Event' });
