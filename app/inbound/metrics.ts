/**
 * Prometheus metrics of the inbound role, on its health port's /metrics:
 * - easeemail_inbound_messages_total{result}: messages taken whole, by what came of them
 *   (report, duplicate, or why it changed nothing: not_a_report, bad_tag, unknown_email, ...;
 *   retry_later and store_failed were answered 451);
 * - easeemail_inbound_reports_total{kind}: timeline rows recorded (hard_bounce, delayed, complaint, ...);
 * - easeemail_inbound_smtp_rejections_total{reason}: relay_denied (550), too_large (552), too_many_recipients (452);
 * - easeemail_inbound_sessions: SMTP sessions open now;
 * - easeemail_inbound_processing_seconds: parse, classify and store, per message.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createInboundMetrics(registry: Registry) {
  return {
    messages: new Counter({ name: 'easeemail_inbound_messages_total', help: 'Inbound messages by result', labelNames: ['result'] as const, registers: [registry] }),
    reports: new Counter({ name: 'easeemail_inbound_reports_total', help: 'Delivery reports recorded on email timelines, by kind', labelNames: ['kind'] as const, registers: [registry] }),
    rejections: new Counter({ name: 'easeemail_inbound_smtp_rejections_total', help: 'SMTP commands refused, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    sessions: new Gauge({ name: 'easeemail_inbound_sessions', help: 'Open SMTP sessions', registers: [registry] }),
    processing: new Histogram({
      name: 'easeemail_inbound_processing_seconds',
      help: 'Time to parse, classify and store one inbound message',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}

export type InboundMetrics = ReturnType<typeof createInboundMetrics>;
