/**
 * Prometheus metrics of email delivery, on the process registry (the queue gauges: queue/metrics.ts):
 * - easeemail_email_deliveries_total{outcome,application}: SMTP attempts by outcome and application id
 *   (worker; bounded: applications are made by the platform team, not by API callers);
 * - easeemail_email_accept_to_delivery_seconds: accepted (or due, when scheduled) → SMTP server took it (worker);
 * - easeemail_emails_accepted_total{application}: emails committed by the api (idempotent replays not counted).
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export function createEmailDeliveryMetrics(registry: Registry) {
  return {
    deliveries: new Counter({
      name: 'easeemail_email_deliveries_total',
      help: 'SMTP delivery attempts by outcome (sent, retry, failed, suppressed) and application id',
      labelNames: ['outcome', 'application'] as const,
      registers: [registry],
    }),
    acceptToDelivery: new Histogram({
      name: 'easeemail_email_accept_to_delivery_seconds',
      help: 'Time from acceptance (or scheduledAt, when later) until the SMTP server accepted the email',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200],
      registers: [registry],
    }),
  };
}

export type EmailDeliveryMetrics = ReturnType<typeof createEmailDeliveryMetrics>;

export function createEmailAcceptMetrics(registry: Registry) {
  return {
    accepted: new Counter({
      name: 'easeemail_emails_accepted_total',
      help: 'Emails accepted (committed) by application id; replays of an Idempotency-Key are not counted',
      labelNames: ['application'] as const,
      registers: [registry],
    }),
  };
}

export type EmailAcceptMetrics = ReturnType<typeof createEmailAcceptMetrics>;
