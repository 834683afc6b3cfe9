/**
 * Webhook metrics on the process registry (worker): deliveries by outcome and endpoint, attempt
 * latency, event accepted → delivered latency, and the number of disabled endpoints (read from
 * PostgreSQL at scrape time, so every worker replica reports the same truth rather than its own
 * share of it).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Db } from '../db/client';

/** What became of one attempt (or of a delivery that was not attempted). */
export type DeliveryOutcome = 'delivered' | 'retry_scheduled' | 'failed' | 'endpoint_disabled';

export function createWebhookMetrics(registry: Registry, db: Db) {
  const deliveries = new Counter({
    name: 'easeemail_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome (delivered, retry_scheduled, failed: no retry left, 410, refused; endpoint_disabled: not attempted) and endpoint id',
    // One series per endpoint and outcome: endpoints are configured by operators (hundreds, not
    // millions), and "which endpoint fails" is the first question when failures rise.
    labelNames: ['outcome', 'endpoint'] as const,
    registers: [registry],
  });
  const attemptDuration = new Histogram({
    name: 'easeemail_webhook_attempt_duration_seconds',
    help: 'Duration of webhook HTTP attempts by result (success, http_error, gone, timeout, network, refused)',
    labelNames: ['result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
    registers: [registry],
  });
  const acceptToDelivery = new Histogram({
    name: 'easeemail_webhook_accept_to_delivery_seconds',
    help: 'Time from the event being accepted until the endpoint acknowledged the delivery (2xx), retries included',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000],
    registers: [registry],
  });
  new Gauge({
    name: 'easeemail_webhook_endpoints_disabled',
    help: 'Webhook endpoints currently disabled, by who disabled them (automatic: 410 Gone or failing for 5 days; manual)',
    labelNames: ['by'] as const,
    registers: [registry],
    async collect() {
      const rows = await db.$queryRaw<{ automatic: bigint; manual: bigint }[]>`
        SELECT count(*) FILTER (WHERE "disabledReason" LIKE 'automatic:%') AS automatic,
               count(*) FILTER (WHERE "disabledReason" IS NULL OR "disabledReason" NOT LIKE 'automatic:%') AS manual
        FROM "webhook_endpoints" WHERE NOT "enabled"`;
      this.set({ by: 'automatic' }, Number(rows[0]?.automatic ?? 0));
      this.set({ by: 'manual' }, Number(rows[0]?.manual ?? 0));
    },
  });
  const disablements = new Counter({
    name: 'easeemail_webhook_endpoint_disablements_total',
    help: 'Webhook endpoints the service disabled, by reason: gone (the receiver answered 410) or failing (every attempt failed for 5 days)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const operationalEvents = new Counter({
    name: 'easeemail_webhook_operational_events_total',
    help: 'Operational events recorded (webhook.endpoint.disabled, webhook.delivery.exhausted), by type',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'easeemail_webhook_rate_limited_total',
    help: "Deliveries parked until their endpoint's rate limit allowed them (not counted as attempts)",
    registers: [registry],
  });
  const recovered = new Counter({
    name: 'easeemail_webhook_recovery_resends_total',
    help: 'Deliveries re-sent by recovery tasks (POST /v1/webhook-endpoints/:id/recover), by outcome: delivered or failed',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  return {
    recovered(outcome: 'delivered' | 'failed') {
      recovered.inc({ outcome });
    },
    endpointDisabled(reason: 'gone' | 'failing') {
      disablements.inc({ reason });
    },
    operationalEvent(type: string) {
      operationalEvents.inc({ type });
    },
    rateLimited() {
      rateLimited.inc();
    },
    delivery(outcome: DeliveryOutcome, endpointId: string) {
      deliveries.inc({ outcome, endpoint: endpointId });
    },
    delivered(endpointId: string, acceptedAt: Date, at: Date) {
      deliveries.inc({ outcome: 'delivered', endpoint: endpointId });
      acceptToDelivery.observe(Math.max(0, at.getTime() - acceptedAt.getTime()) / 1000);
    },
    attempt(result: string, durationMs: number) {
      attemptDuration.observe({ result }, durationMs / 1000);
    },
  };
}

export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
