/**
 * Events as the API sees them: publish (record + fan out + enqueue after commit), read with every
 * delivery and attempt, and retry one delivery now.
 */
import type { Db, Prisma } from '../db/client';
import { ConflictError, NotFoundError } from '../errors';
import type { Idempotency, IdempotencyClaim } from '../http/idempotency';
import type { JobProducer } from '../queue/producer';
import { attemptFields, deliveryFields } from './delivery-views';
import { createCoalescer } from '../shared/coalesce';
import type { Pool } from 'pg';
import { recordEvent, recordEvents, recordEventsOn, type NewEvent, type RecordedEvent, type RegisteredType } from './events';

type Tx = Prisma.TransactionClient;

export interface PublishedEvent {
  id: string;
  type: string;
  /** How many endpoints it fans out to. */
  deliveries: number;
}


/**
 * Statements recording events at once; publishes arriving meanwhile go together in the next one.
 * Measured under 200 events/s on a busy 2-core machine: one statement a request queued requests
 * behind the database pool and the api's CPU (Prisma's per-call cost), which made the p99 tail.
 */
const MAX_RECORDS_IN_FLIGHT = 2;
/**
 * Connections of the api's publish pool (app/api.ts): the recording statements and the event-type
 * lookups (event-types.ts), at most two of each in flight.
 */
export const PUBLISH_POOL_SIZE = 4;
const MAX_EVENTS_PER_STATEMENT = 500;

interface PendingEvent {
  input: NewEvent;
  recorded?: RecordedEvent;
}

export function createEventService(deps: {
  db: Db;
  jobs: JobProducer;
  idempotency: Pick<Idempotency, 'recordInput'>;
  /** The accept path's statement pool (app/api.ts); without one, events are recorded through Prisma. */
  pool?: Pick<Pool, 'query'>;
  now?: () => number;
}) {
  const { db, jobs, idempotency } = deps;
  const now = deps.now ?? Date.now;

  /**
   * Records the event and its deliveries, then enqueues them (outbox rule). With an
   * Idempotency-Key claim the key's record is written in the same transaction (as emails do), so
   * the event and the key's use commit together.
   */
  const recordTogether = createCoalescer<PendingEvent>({
    maxInFlight: MAX_RECORDS_IN_FLIGHT,
    maxItems: MAX_EVENTS_PER_STATEMENT,
    // One request's event can break the statement (e.g. a payload PostgreSQL refuses): only it fails.
    isolateFailures: true,
    async run(pending) {
      const inputs = pending.map((p) => p.input);
      const recorded = deps.pool ? await recordEventsOn(deps.pool, inputs) : await recordEvents(db, inputs);
      pending.forEach((p, i) => (p.recorded = recorded[i]));
    },
  });

  /** Records one event without a transaction of its own, grouped with concurrent ones. */
  async function recordAlone(input: NewEvent): Promise<RecordedEvent> {
    const pending: PendingEvent = { input };
    await recordTogether([pending]);
    return pending.recorded!;
  }

  async function publish(
    input: { applicationId: string; type: string; payload: Prisma.InputJsonObject; apiKeyId: string | null },
    opts: { idempotency?: IdempotencyClaim } = {},
  ): Promise<PublishedEvent> {
    const claim = opts.idempotency;
    const responseOf = (recorded: RecordedEvent): PublishedEvent => ({ id: recorded.eventId, type: input.type, deliveries: recorded.deliveryIds.length });
    // Recording is one atomic statement: a transaction is only needed to add the key's record.
    const recorded = claim
      ? await db.$transaction(async (tx: Tx) => {
          const r = await recordEvent(tx, input);
          await tx.idempotencyRecord.create({ data: idempotency.recordInput(claim, 202, { ...responseOf(r) }) });
          return r;
        })
      : await recordAlone(input);
    await jobs.enqueueDetached('webhook', recorded.deliveryIds);
    return responseOf(recorded);
  }

  /**
   * Publish without an Idempotency-Key: the type's registration is read by the recording
   * statement itself, so a publish is one round trip, or two for a type with a schema: it comes
   * back unrecorded with the schema, its payload is checked (`check` throws the 422 when it does
   * not match) and it is recorded then. Resolves with whether the type is deprecated.
   */
  async function publishChecked(
    input: { applicationId: string; type: string; payload: Prisma.InputJsonObject; apiKeyId: string | null },
    check: (registered: RegisteredType) => { deprecated: boolean },
  ): Promise<{ published: PublishedEvent; deprecated: boolean }> {
    let recorded = await recordAlone({ ...input, checkType: true });
    let deprecated = recorded.type?.deprecated ?? false;
    if (recorded.type?.hasSchema) {
      const registered = recorded.type.registered;
      if (!registered) throw new Error(`event type ${input.type}: a schema without its registration`);
      ({ deprecated } = check(registered));
      recorded = await recordAlone(input);
    }
    await jobs.enqueueDetached('webhook', recorded.deliveryIds);
    return { published: { id: recorded.eventId, type: input.type, deliveries: recorded.deliveryIds.length }, deprecated };
  }

  async function get(applicationId: string, id: string) {
    const event = await db.event.findUnique({
      where: { id, applicationId },
      include: {
        deliveries: {
          orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
          include: { attempts: { orderBy: { number: 'asc' } }, endpoint: { select: { url: true } } },
        },
      },
    });
    if (!event) throw new NotFoundError(`no event with id ${id}`);
    return {
      id: event.id,
      type: event.type,
      payload: event.payload as Record<string, unknown>,
      createdAt: event.createdAt.toISOString(),
      deliveries: event.deliveries.map((d) => ({ ...deliveryFields(d), attempts: d.attempts.map(attemptFields) })),
    };
  }

  /**
   * Makes the delivery due now, whatever its state (a delivered one is sent again). It continues
   * its own schedule: a delivery with retries left is retried if this attempt fails; one that
   * used them all gets this single attempt.
   */
  async function retryDelivery(applicationId: string, id: string): Promise<{ id: string; status: 'pending' }> {
    const d = await db.webhookDelivery.findUnique({ where: { id, applicationId }, include: { endpoint: { select: { enabled: true } } } });
    if (!d) throw new NotFoundError(`no webhook delivery with id ${id}`);
    if (!d.endpoint.enabled) throw new ConflictError(`endpoint ${d.endpointId} is disabled; enable it first (PATCH /v1/webhook-endpoints/${d.endpointId} {"enabled": true})`);
    const job = await jobs.find('webhook', id).catch(() => undefined);
    const state = job ? await job.getState().catch(() => 'unknown') : 'unknown';
    if (state === 'active') throw new ConflictError(`delivery ${id} is being attempted right now; look at it again in a moment`);

    await db.webhookDelivery.update({ where: { id, applicationId }, data: { status: 'pending', nextAttemptAt: new Date(now()) } });
    // Best effort, as on publish: the row is due, so the sweeper enqueues it if this fails.
    try {
      if (job && state === 'delayed') await job.promote();
      else await jobs.ensureJobs('webhook', [id]); // adds it when missing or finished
    } catch {
      /* repaired by the sweeper */
    }
    return { id, status: 'pending' };
  }

  return { publish, publishChecked, get, retryDelivery };
}

export type EventService = ReturnType<typeof createEventService>;
