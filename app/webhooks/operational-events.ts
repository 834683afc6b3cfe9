/**
 * Operational events: the service tells an application about its own webhook endpoints through
 * the same fan-out as any event, to the endpoints that list the type in their eventTypes.
 *
 * - `webhook.endpoint.disabled`: the service disabled an endpoint (410 Gone, or failing for
 *   5 days), with the reason.
 * - `webhook.delivery.exhausted`: a delivery used every attempt of the retry schedule.
 *
 * No loops: an event about an endpoint is never delivered to that endpoint (it is failing or
 * gone), and a delivery of an operational event never causes another one (two failing
 * endpoints subscribed to each other's news would otherwise feed each other forever).
 * Recording one is best effort: the outcome that caused it is already committed, so a failure
 * here is logged, not retried.
 */
import type { Db } from '../db/client';
import type { Logger } from '../log';
import type { JobProducer } from '../queue/producer';
import { recordEvent } from './events';
import { isOperationalEventType, OPERATIONAL_EVENT_TYPES } from './operational-types';

/** What the processor knows about the delivery that caused an operational event. */
export interface OperationalCause {
  /** The endpoint's application: the event goes to that application's endpoints only. */
  applicationId: string;
  deliveryId: string;
  eventId: string;
  eventType: string;
  endpointId: string;
  url: string;
}

export interface OperationalEvents {
  endpointDisabled(cause: OperationalCause, details: { reason: string; at: Date; failingSince: Date | null }): Promise<void>;
  deliveryExhausted(cause: OperationalCause, details: { attempts: number; lastStatusCode: number | null; lastError: string | null; at: Date }): Promise<void>;
}

export function createOperationalEvents(deps: { db: Db; jobs: Pick<JobProducer, 'enqueue'>; log: Logger; onRecorded?: (type: string) => void }): OperationalEvents {
  const { db, jobs, log } = deps;

  async function publish(cause: OperationalCause, type: string, payload: Record<string, string | number | null>): Promise<void> {
    if (isOperationalEventType(cause.eventType)) return; // no event about an operational event's delivery
    try {
      const recorded = await recordEvent(db, { applicationId: cause.applicationId, type, payload, excludeEndpointId: cause.endpointId });
      deps.onRecorded?.(type);
      await jobs.enqueue('webhook', recorded.deliveryIds);
    } catch (err) {
      log.warn({ err, type, endpointId: cause.endpointId }, 'could not record an operational event');
    }
  }

  return {
    endpointDisabled: (cause, d) =>
      publish(cause, OPERATIONAL_EVENT_TYPES.endpointDisabled, {
        endpointId: cause.endpointId,
        url: cause.url,
        reason: d.reason,
        disabledAt: d.at.toISOString(),
        failingSince: d.failingSince?.toISOString() ?? null,
        causedByDeliveryId: cause.deliveryId,
      }),
    deliveryExhausted: (cause, d) =>
      publish(cause, OPERATIONAL_EVENT_TYPES.deliveryExhausted, {
        deliveryId: cause.deliveryId,
        eventId: cause.eventId,
        eventType: cause.eventType,
        endpointId: cause.endpointId,
        url: cause.url,
        attempts: d.attempts,
        lastStatusCode: d.lastStatusCode,
        lastError: d.lastError,
        failedAt: d.at.toISOString(),
      }),
  };
}
