/**
 * The webhook delivery processor (queue `webhook-delivery`, job id = delivery id). One job run is
 * at most one HTTP attempt:
 *
 * 1. read the delivery with its endpoint and event (delivery-store.ts); skip it when it is terminal
 *    (a duplicate job), park it when it is not due yet, fail it when the endpoint is disabled;
 * 2. take an in-flight slot for the endpoint (endpoint-gate.ts); when the endpoint is saturated
 *    park the job briefly instead of holding a worker slot;
 * 3. sign (Standard Webhooks; webhook-id = delivery id, the same on every retry) and POST;
 * 4. record the attempt and the delivery's new state together, then: 2xx → delivered;
 *    410 → endpoint disabled; refused by the outbound guard → failed without retry (the address
 *    rule will refuse it again; fix DNS or the URL, then retry the delivery); anything else →
 *    retried per the schedule (Retry-After honoured) and failed once the schedule is exhausted.
 *    An endpoint whose attempts have all failed for 5 days is disabled.
 *
 * Waiting between attempts is a delayed BullMQ job (moveToDelayed + DelayedError), so a retry
 * due in 10 hours occupies no worker. PostgreSQL holds nextAttemptAt, so a lost job is rebuilt
 * by the sweeper (sweeper.ts).
 */
import { DelayedError, type Job } from 'bullmq';
import type { Pool } from 'pg';
import type { Config } from '../config';
import type { Db } from '../db/client';
import type { Logger } from '../log';
import { JOBS, jobRowId } from '../queue';
import type { QueueProcessor } from '../queue/processor';
import { createAttemptSender } from './attempt';
import { createDeliveryStore, type DeliveryForAttempt } from './delivery-store';
import { createEndpointGate, type EndpointGate } from './endpoint-gate';
import { disableEndpoint } from './endpoints';
import type { WebhookMetrics } from './metrics';
import type { OperationalCause, OperationalEvents } from './operational-events';
import { MAX_INLINE_WAIT_MS, type EndpointRateLimiter } from './rate-limiter';
import { retryDelayMs } from './retry-policy';
import type { SecretBox } from './secrets';
import type { SendResult, WebhookSender } from './sender';
import type { Signer } from './signature';

/** An endpoint whose attempts have all failed for this long is disabled (Svix's rule). */
export const DISABLE_AFTER_FAILING_MS = 5 * 24 * 3600 * 1000;
/**
 * Connections of the delivery hot path's own pool (prepared statements, no ORM layer: see
 * delivery-store.ts), which the worker root opens beside Prisma's; batching keeps the need small.
 */
export const WEBHOOK_POOL_SIZE = 4;
/** A job that comes back this much before its delivery is due is parked again. */
const EARLY_TOLERANCE_MS = 50;

export interface WebhookProcessorDeps {
  db: Db;
  /** The hot path's pool (WEBHOOK_POOL_SIZE connections), opened and closed by the root. */
  pool: Pool;
  log: Logger;
  secrets: SecretBox;
  sender: WebhookSender;
  metrics: WebhookMetrics;
  /** Per-endpoint deliveries per second, shared by every worker through Redis. */
  rateLimiter: EndpointRateLimiter;
  /** webhook.endpoint.disabled and webhook.delivery.exhausted. */
  operational: OperationalEvents;
  settings: Pick<Config['webhooks'], 'concurrency' | 'endpointMaxInFlight' | 'retryScheduleMs' | 'retryAfterMaxMs'>;
  /** JOB_LOCK_MS: how soon the jobs of a killed worker can be found. */
  jobLockMs: number;
  now?: () => number;
}

export function createWebhookProcessor(deps: WebhookProcessorDeps): QueueProcessor {
  const { db, log, sender, metrics, settings } = deps;
  const now = deps.now ?? Date.now;
  const gate: EndpointGate = createEndpointGate({ limit: settings.endpointMaxInFlight });
  const policy = { scheduleMs: settings.retryScheduleMs, retryAfterMaxMs: settings.retryAfterMaxMs };
  const store = createDeliveryStore(deps.pool);

  const attempts = createAttemptSender({ secrets: deps.secrets, sender, now });

  const causeOf = (d: DeliveryForAttempt): OperationalCause => ({ applicationId: d.applicationId, deliveryId: d.id, eventId: d.eventId, eventType: d.eventType, endpointId: d.endpointId, url: d.url });

  /**
   * The endpoint's rate limit (rate-limiter.ts). Resolves when this attempt may be sent now;
   * otherwise parks the job (throws DelayedError): first until its planned place in the line
   * (kept on the job for this attempt), then, if the send slots are taken when it comes back,
   * for about as long as they are taken.
   */
  async function awaitRateLimit(job: Job, d: DeliveryForAttempt, perSecond: number): Promise<void> {
    const planned = JOBS.webhook.payload.parse(job.data).rateSlot;
    if (!planned || planned.attempt !== d.attemptCount) {
      const waitMs = await deps.rateLimiter.plan(d.endpointId, perSecond);
      if (waitMs > MAX_INLINE_WAIT_MS) {
        const at = now() + waitMs;
        await job.updateData({ ...job.data, rateSlot: { at, attempt: d.attemptCount } });
        metrics.rateLimited();
        return park(job, at);
      }
    } else if (planned.at - now() > MAX_INLINE_WAIT_MS) {
      return park(job, planned.at); // back early
    }
    const send = await deps.rateLimiter.take(d.endpointId, perSecond);
    if (!send.reserved) {
      metrics.rateLimited();
      // Spread over one more such wait, so jobs parked together do not come back together.
      return park(job, now() + send.waitMs + Math.round(Math.random() * send.waitMs));
    }
    if (send.waitMs > 0) await new Promise((r) => setTimeout(r, send.waitMs));
  }

  async function park(job: Job, until: number): Promise<never> {
    await job.moveToDelayed(until, job.token);
    throw new DelayedError();
  }

  /** Updates the endpoint after a failed attempt; returns the reason when it got disabled. */
  async function afterFailure(jobLog: () => Logger, d: DeliveryForAttempt, result: SendResult, at: Date): Promise<string | undefined> {
    let reason: string | undefined;
    if (result.outcome === 'gone') {
      reason = `automatic: the receiver answered 410 Gone at ${at.toISOString()}`;
    } else if (d.failingSince === null) {
      await db.webhookEndpoint.updateMany({ where: { id: d.endpointId, failingSince: null }, data: { failingSince: at } });
    } else if (at.getTime() - d.failingSince.getTime() >= DISABLE_AFTER_FAILING_MS) {
      reason = `automatic: every attempt failed since ${d.failingSince.toISOString()} (5 days); last error: ${result.error ?? 'unknown'}`.slice(0, 1000);
    }
    if (reason === undefined) return undefined;
    if (await disableEndpoint(db, { id: d.endpointId, reason, at })) {
      jobLog().warn({ reason }, 'webhook endpoint disabled');
      metrics.endpointDisabled(result.outcome === 'gone' ? 'gone' : 'failing');
      await deps.operational.endpointDisabled(causeOf(d), { reason, at, failingSince: d.failingSince });
    }
    return reason;
  }

  async function deliver(job: Job): Promise<string> {
    const deliveryId = jobRowId('webhook', job.data);
    // A parked job whose endpoint is still full goes back without costing a database read.
    const stillFull = gate.reparkIfStillFull(deliveryId);
    if (stillFull && 'retryInMs' in stillFull) return park(job, now() + stillFull.retryInMs);
    const d = await store.load(deliveryId);
    if (!d) return 'deleted';
    // Every line about this job names its application (from the row just loaded; README "Applications").
    // Made on first use: pino serialises a child's bindings when it is made, and most jobs never log.
    let childLog: Logger | undefined;
    const jobLog = (): Logger => (childLog ??= log.child({ applicationId: d.applicationId, deliveryId: d.id, endpointId: d.endpointId }));
    if (d.status === 'delivered' || d.status === 'failed') return `already ${d.status}`;
    if (d.nextAttemptAt && d.nextAttemptAt.getTime() > now() + EARLY_TOLERANCE_MS) return park(job, d.nextAttemptAt.getTime());
    if (!d.enabled) {
      await db.webhookDelivery.updateMany({
        where: { id: d.id, status: 'pending' },
        data: { status: 'failed', nextAttemptAt: null, lastError: 'endpoint disabled' },
      });
      metrics.delivery('endpoint_disabled', d.endpointId);
      return 'endpoint disabled';
    }

    let signers: Signer[];
    try {
      signers = attempts.signersFor(d);
    } catch (err) {
      // Not transient: retrying cannot help until the secret is rotated (or the key restored).
      jobLog().error({ err }, 'cannot decrypt a webhook endpoint secret');
      await db.webhookDelivery.updateMany({
        where: { id: d.id, status: 'pending' },
        data: { status: 'failed', nextAttemptAt: null, lastError: `${(err as Error).message}; rotate the endpoint's secret, then retry` },
      });
      metrics.delivery('failed', d.endpointId);
      return 'failed: secret unreadable';
    }

    if (d.rateLimit !== null) await awaitRateLimit(job, d, d.rateLimit);

    const slot = await gate.acquire(d.endpointId, d.id);
    if ('retryInMs' in slot) {
      if (log.isLevelEnabled('debug')) jobLog().debug({ ...slot }, 'endpoint saturated; job parked');
      return park(job, now() + slot.retryInMs);
    }

    let startedAt: Date;
    let result: SendResult;
    try {
      ({ startedAt, result } = await attempts.send(d, signers));
    } finally {
      slot.release();
    }
    gate.observe(d.endpointId, result.durationMs);
    metrics.attempt(result.outcome.replace('-', '_'), result.durationMs);

    const at = new Date(now());
    const attemptNumber = d.attemptCount + 1;
    if (result.outcome === 'success') {
      // Endpoint first (as after a failure): once a client sees the delivery delivered, the streak shows ended.
      if (d.failingSince !== null) await db.webhookEndpoint.updateMany({ where: { id: d.endpointId }, data: { failingSince: null } });
      await store.record({ id: d.id, startedAt, result, status: 'delivered', nextAttemptAt: null, at });
      metrics.delivered(d.endpointId, d.eventCreatedAt, at);
      return 'delivered';
    }

    // Endpoint first: once a client sees the delivery failed by a 410, the endpoint shows disabled.
    const disabledBecause = await afterFailure(jobLog, d, result, at);
    // Refused and 410 are not retried: the same request would get the same answer.
    const final = disabledBecause !== undefined || result.outcome === 'refused' || result.outcome === 'gone';
    const delay = final ? undefined : retryDelayMs(policy, attemptNumber, result.retryAfterMs);
    const nextAttemptAt = delay === undefined ? null : new Date(at.getTime() + delay);
    await store.record({
      id: d.id,
      startedAt,
      result,
      status: nextAttemptAt ? 'pending' : 'failed',
      nextAttemptAt,
      at,
      lastError: disabledBecause && result.outcome !== 'gone' ? `endpoint disabled: ${disabledBecause}` : undefined,
    });
    if (log.isLevelEnabled('debug')) jobLog().debug({ attempt: attemptNumber, outcome: result.outcome, statusCode: result.statusCode, nextAttemptAt }, 'webhook attempt failed');
    if (!nextAttemptAt) {
      metrics.delivery('failed', d.endpointId);
      // Out of attempts (not refused, not ended by a 410 or a disabling, which say so themselves).
      if (!final) {
        await deps.operational.deliveryExhausted(causeOf(d), { attempts: attemptNumber, lastStatusCode: result.statusCode ?? null, lastError: result.error ?? null, at });
      }
      return `failed: ${result.error ?? result.outcome}`;
    }
    metrics.delivery('retry_scheduled', d.endpointId);
    return park(job, nextAttemptAt.getTime());
  }

  return {
    queue: JOBS.webhook.queue,
    process: deliver,
    options: {
      concurrency: settings.concurrency,
      // Find jobs of a killed worker as soon as their lock can have expired (default: every 30 s).
      stalledInterval: Math.min(30_000, deps.jobLockMs),
    },
  };
}
