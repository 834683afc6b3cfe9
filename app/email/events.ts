/**
 * The webhook events an email emits, on terminal states only (DESIGN.md section 2): a soft
 * failure that will be retried emits nothing.
 */
import type { Prisma } from '../db/client';

export type EmailEventType =
  | 'email.sent'
  | 'email.failed'
  | 'email.cancelled'
  // Deliverability (inbound/reports.ts, email/suppressed.ts): reports that come back, and sends left out.
  | 'email.bounced'
  | 'email.delivery_delayed'
  | 'email.complained'
  | 'email.suppressed';

export interface EmailEventSource {
  id: string;
  from: string;
  to: string[];
  subject: string;
  tags: string[];
  metadata: unknown;
  messageId: string | null;
  attemptCount: number;
}

export function emailEventPayload(
  email: EmailEventSource,
  status: 'sent' | 'failed' | 'cancelled' | 'bounced' | 'suppressed',
  at: Date,
  details: { smtpResponse?: string | null; error?: string | null } = {},
): Prisma.InputJsonObject {
  return {
    emailId: email.id,
    status,
    at: at.toISOString(),
    from: email.from,
    to: email.to,
    subject: email.subject,
    tags: email.tags,
    metadata: (email.metadata ?? null) as Prisma.InputJsonValue,
    messageId: email.messageId,
    attempts: email.attemptCount,
    ...(details.smtpResponse != null ? { smtpResponse: details.smtpResponse } : {}),
    ...(details.error != null ? { error: details.error } : {}),
  };
}

type EmailStatus = Parameters<typeof emailEventPayload>[1];

/** The payload emailEventPayload builds, as a JSON Schema, plus what a type adds: the catalog (GET /v1/event-types) shows it. Keep them in step. */
const emailEventSchema = (statuses: EmailStatus[], extra: Record<string, unknown> = {}) => ({
  type: 'object',
  required: ['emailId', 'status', 'at', 'from', 'to', 'subject', 'tags', 'metadata', 'messageId', 'attempts', ...Object.keys(extra)],
  properties: {
    emailId: { type: 'string', format: 'uuid' },
    status: { enum: statuses },
    at: { type: 'string', format: 'date-time' },
    from: { type: 'string' },
    to: { type: 'array', items: { type: 'string' } },
    subject: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
    metadata: {},
    messageId: { type: ['string', 'null'] },
    attempts: { type: 'integer' },
    smtpResponse: { type: 'string' },
    error: { type: 'string' },
    ...extra,
  },
});

/** inbound/reports.ts: the report that came back. */
const report = {
  report: {
    type: 'object',
    required: ['kind', 'recipient', 'receivedAt'],
    properties: {
      kind: { type: 'string' },
      recipient: { type: 'string' },
      status: { type: ['string', 'null'] },
      diagnostic: { type: ['string', 'null'] },
      receivedAt: { type: 'string', format: 'date-time' },
    },
  },
};

/** Every email.* type (a Record, so a new EmailEventType fails the type check until it is described here). */
const EMAIL_EVENT_TYPES: Record<EmailEventType, { description: string; schema: Record<string, unknown> }> = {
  'email.sent': { description: 'The SMTP relay accepted the email.', schema: emailEventSchema(['sent']) },
  'email.failed': { description: 'The email failed for good (a permanent SMTP error, or every retry used).', schema: emailEventSchema(['failed']) },
  'email.cancelled': { description: 'A scheduled email was cancelled before it was sent.', schema: emailEventSchema(['cancelled']) },
  'email.bounced': { description: 'A recipient bounced (a delivery status report came back).', schema: emailEventSchema(['sent', 'bounced'], report) },
  'email.delivery_delayed': { description: 'A relay reported the delivery delayed.', schema: emailEventSchema(['sent', 'bounced'], report) },
  'email.complained': { description: 'A recipient marked the email as spam (feedback loop report).', schema: emailEventSchema(['sent', 'bounced'], report) },
  'email.suppressed': {
    description: 'The email was not sent to suppressed recipients.',
    schema: emailEventSchema(['suppressed'], { suppressedRecipients: { type: 'array', items: { type: 'string' } } }),
  },
};

/** The email.* types with their descriptions and payload schemas, for the event-type catalog. */
export const EMAIL_EVENT_CATALOG = Object.entries(EMAIL_EVENT_TYPES).map(([name, t]) => ({ name, ...t }));
