/**
 * Recover (Svix's "recover failed messages"): after an endpoint was down, re-send every delivery
 * of it that failed (used up its schedule, or was failed by disabling) in a time window, in event
 * order, as a background task with its own status. The request only records the task and
 * enqueues its job (outbox rule), so it answers at once however many deliveries there are; the
 * worker does the sending (recovery-task.ts). Re-enabling is separate: a disabled endpoint is a
 * 409 here. At most one task per endpoint is queued or running (a partial unique index): a second
 * request while one runs is a 409 naming it, never a second pass over the same deliveries.
 */
import type { Db, Prisma } from '../db/client';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import type { JobProducer } from '../queue/producer';
import { isUniqueViolation } from '../shared/db-errors';
import type { Sweep } from '../queue/processor';

type RecoveryRow = Prisma.WebhookRecoveryGetPayload<object>;

export function recoveryView(r: RecoveryRow) {
  const handled = r.done + r.failed;
  return {
    id: r.id,
    endpointId: r.endpointId,
    since: r.since.toISOString(),
    until: r.until.toISOString(),
    status: r.status as 'queued' | 'running' | 'done' | 'failed',
    total: r.total,
    queued: r.total === null ? null : Math.max(0, r.total - handled),
    done: r.done,
    failed: r.failed,
    error: r.error,
    createdAt: r.createdAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
  };
}

export type RecoveryView = ReturnType<typeof recoveryView>;

export const ACTIVE_RECOVERY = ['queued', 'running'];

export function createRecoveryService(deps: { db: Db; jobs: Pick<JobProducer, 'enqueue'>; now?: () => number }) {
  const { db, jobs } = deps;
  const now = deps.now ?? Date.now;

  async function start(applicationId: string, endpointId: string, input: { since: Date; until?: Date }): Promise<RecoveryView> {
    const endpoint = await db.webhookEndpoint.findFirst({ where: { id: endpointId, applicationId }, select: { enabled: true } });
    if (!endpoint) throw new NotFoundError(`no webhook endpoint with id ${endpointId}`);
    if (!endpoint.enabled) {
      throw new ConflictError(`endpoint ${endpointId} is disabled; enable it first (PATCH /v1/webhook-endpoints/${endpointId} {"enabled": true}), then recover`);
    }
    const until = input.until ?? new Date(now());
    if (input.since >= until) throw new ValidationError('since must be before until', [{ path: '/since', message: `must be before ${input.until ? 'until' : 'now'}` }]);
    let row: RecoveryRow;
    try {
      row = await db.webhookRecovery.create({ data: { applicationId, endpointId, since: input.since, until, status: 'queued' } });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const active = await db.webhookRecovery.findFirst({ where: { applicationId, endpointId, status: { in: ACTIVE_RECOVERY } } });
      throw new ConflictError(
        `a recovery of endpoint ${endpointId} is already ${active?.status ?? 'running'}` +
          (active ? ` (${active.id}: GET /v1/webhook-endpoints/${endpointId}/recoveries/${active.id}); start another once it has finished` : ''),
      );
    }
    await jobs.enqueue('recovery', [row.id]);
    return recoveryView(row);
  }

  async function get(applicationId: string, endpointId: string, recoveryId: string): Promise<RecoveryView> {
    const row = await db.webhookRecovery.findFirst({ where: { id: recoveryId, endpointId, applicationId } });
    if (!row) throw new NotFoundError(`no recovery ${recoveryId} of webhook endpoint ${endpointId}`);
    return recoveryView(row);
  }

  return { start, get };
}

export type RecoveryService = ReturnType<typeof createRecoveryService>;

/** Outbox repair: a queued or running recovery whose job is missing (or finished early) gets one. */
export function createRecoverySweep(deps: { db: Db; jobs: Pick<JobProducer, 'ensureJobs'>; graceMs: number; now?: () => number }): Sweep {
  const now = deps.now ?? Date.now;
  return {
    name: 'webhook-recovery-outbox',
    async run() {
      const rows = await deps.db.webhookRecovery.findMany({
        where: { status: { in: ACTIVE_RECOVERY }, updatedAt: { lt: new Date(now() - deps.graceMs) } },
        select: { id: true },
        take: 100,
      });
      return deps.jobs.ensureJobs('recovery', rows.map((r) => r.id));
    },
  };
}
