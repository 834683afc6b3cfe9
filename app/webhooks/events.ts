/**
 * Recording an event and fanning it out: one delivery row per enabled endpoint subscribed to the
 * type (empty eventTypes = all), in the caller's transaction. After the commit the caller
 * enqueues the returned delivery ids (`enqueueDeliveries`); if that fails the sweeper does it.
 * Used by POST /v1/events and by the email processor for terminal states (email.sent, ...).
 */
import type { Prisma } from '../db/client';
import type { Queues } from '../queue';

type Tx = Prisma.TransactionClient;

export interface RecordedEvent {
  eventId: string;
  deliveryIds: string[];
}

export async function recordEvent(
  tx: Tx,
  input: { type: string; payload: Prisma.InputJsonValue; apiKeyId?: string | null },
): Promise<RecordedEvent> {
  const event = await tx.event.create({ data: { type: input.type, payload: input.payload, apiKeyId: input.apiKeyId ?? null } });
  const endpoints = await tx.webhookEndpoint.findMany({
    where: { enabled: true, OR: [{ eventTypes: { isEmpty: true } }, { eventTypes: { has: input.type } }] },
    select: { id: true },
  });
  if (endpoints.length === 0) return { eventId: event.id, deliveryIds: [] };
  const deliveries = await tx.webhookDelivery.createManyAndReturn({
    data: endpoints.map((e) => ({ eventId: event.id, endpointId: e.id })),
    select: { id: true },
  });
  return { eventId: event.id, deliveryIds: deliveries.map((d) => d.id) };
}

/** Best effort: a failure here is repaired by the sweeper (outbox rule). */
export async function enqueueDeliveries(queues: Queues, deliveryIds: string[]): Promise<boolean> {
  if (deliveryIds.length === 0) return true;
  try {
    await queues.webhook.addBulk(deliveryIds.map((deliveryId) => ({ name: 'deliver', data: { deliveryId }, opts: { jobId: deliveryId } })));
    return true;
  } catch {
    return false;
  }
}
