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
