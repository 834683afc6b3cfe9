/**
 * Idempotency-Key for POST routes (the IETF httpapi idempotency-key draft, as Stripe and Resend
 * do it). A record is keyed by (application, API key, route scope, Idempotency-Key) and holds the SHA-256 of
 * the request body and the response (status and JSON body) for 24 hours:
 *
 * - same key, same body  → the first response again, with `Idempotent-Replayed: true`;
 * - same key, other body → 409;
 * - only successful responses are recorded: a rejected request stores nothing and may be retried
 *   with the same key.
 *
 * The record is written by the route handler in the SAME transaction as its own rows
 * (`recordInput`), so "the email exists" and "the key is used" commit together. Two concurrent
 * requests with one key both run; the unique index makes the second transaction fail (PostgreSQL
 * holds it until the first commits), it rolls back whole, and the second caller is answered with
 * the first one's response.
 *
 *   await idempotency.respond(ctx, 'POST /v1/events', async (claim) => {
 *     const body = { id };
 *     await db.$transaction([db.event.create(...), ...(claim ? [db.idempotencyRecord.create({ data: idempotency.recordInput(claim, 202, body) })] : [])]);
 *     return { status: 202, body };
 *   });
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { Db, Prisma } from '../db/client';
import { ConflictError, ValidationError } from '../errors';
import { isUniqueViolation } from '../shared/db-errors';

import { applicationOf } from '../shared/application';
import { IDEMPOTENCY_HEADER } from '../shared/openapi';

export { IDEMPOTENCY_HEADER };
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** Set on an answer replayed from a key's record (the quota refund reads it: a replay accepted nothing new). */
export const IDEMPOTENT_REPLAY_HEADER = 'Idempotent-Replayed';
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;

export interface IdempotencyClaim {
  applicationId: string;
  apiKeyId: string;
  scope: string;
  key: string;
  requestHash: string;
}

export interface IdempotentResponse {
  status: number;
  body: Prisma.InputJsonValue;
}

/** JSON with object keys sorted, so the hash ignores key order and white space. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body ?? null)).digest('hex');
}

export function createIdempotency(deps: { db: Db; ttlMs?: number; now?: () => number }) {
  const { db } = deps;
  const ttlMs = deps.ttlMs ?? IDEMPOTENCY_TTL_MS;
  const now = deps.now ?? Date.now;

  /** The claim for this request, or undefined when it carries no Idempotency-Key. */
  function claimFor(ctx: Context, scope: string): IdempotencyClaim | undefined {
    // Absent means no idempotency; present but empty is a malformed key (1 to 255 characters).
    if (ctx.headers[IDEMPOTENCY_HEADER.toLowerCase()] === undefined) return undefined;
    const key = ctx.get(IDEMPOTENCY_HEADER);
    if (!KEY_FORMAT.test(key)) {
      throw new ValidationError(`the ${IDEMPOTENCY_HEADER} header must be 1 to 255 visible ASCII characters`, [
        { path: `/headers/${IDEMPOTENCY_HEADER}`, message: 'invalid format' },
      ]);
    }
    const apiKeyId: string | undefined = ctx.state.apiKey?.id;
    if (!apiKeyId) throw new Error('idempotency needs an authenticated API key (mount requireScope first)');
    return { applicationId: applicationOf(ctx).id, apiKeyId, scope, key, requestHash: requestHash(ctx.request.body) };
  }

  /** The row to create, inside the caller's transaction, for a successful response. */
  function recordInput(claim: IdempotencyClaim, status: number, body: Prisma.InputJsonValue): Prisma.IdempotencyRecordCreateManyInput {
    const t = now();
    return { ...claim, responseStatus: status, responseBody: body, createdAt: new Date(t), expiresAt: new Date(t + ttlMs) };
  }

  async function findLive(claim: IdempotencyClaim) {
    const record = await db.idempotencyRecord.findUnique({
      where: { applicationId_apiKeyId_scope_key: { applicationId: claim.applicationId, apiKeyId: claim.apiKeyId, scope: claim.scope, key: claim.key } },
    });
    if (!record) return undefined;
    if (record.expiresAt.getTime() <= now()) {
      // Expired: free the key now rather than waiting for the purge sweep.
      await db.idempotencyRecord.deleteMany({ where: { id: record.id, expiresAt: record.expiresAt } });
      return undefined;
    }
    return record;
  }

  function replay(ctx: Context, claim: IdempotencyClaim, record: { requestHash: string; responseStatus: number; responseBody: unknown }) {
    if (record.requestHash !== claim.requestHash) {
      throw new ConflictError(`${IDEMPOTENCY_HEADER} "${claim.key}" was already used with a different request body; use a new key for a new request`);
    }
    ctx.status = record.responseStatus;
    ctx.body = record.responseBody;
    ctx.set(IDEMPOTENT_REPLAY_HEADER, 'true');
  }

  /**
   * Answers the request once per key: replays or refuses a used key, otherwise runs `handler`
   * (which records the claim in its transaction when one is given) and sends its response.
   */
  async function respond(ctx: Context, scope: string, handler: (claim: IdempotencyClaim | undefined) => Promise<IdempotentResponse>): Promise<void> {
    const claim = claimFor(ctx, scope);
    if (claim) {
      const existing = await findLive(claim);
      if (existing) return replay(ctx, claim, existing);
    }
    let res: IdempotentResponse;
    try {
      res = await handler(claim);
    } catch (err) {
      if (claim && isUniqueViolation(err)) {
        // A concurrent request with the same key committed first; our transaction rolled back.
        const winner = await findLive(claim);
        if (winner) return replay(ctx, claim, winner);
      }
      throw err;
    }
    ctx.status = res.status;
    ctx.body = res.body;
  }

  /** Deletes expired records (the worker's sweep); returns how many. */
  async function purgeExpired(limit = 10_000): Promise<number> {
    return db.$executeRaw`DELETE FROM "idempotency_records" WHERE "id" IN (SELECT "id" FROM "idempotency_records" WHERE "expiresAt" <= now() LIMIT ${limit})`;
  }

  return { claimFor, recordInput, respond, purgeExpired };
}

export type Idempotency = ReturnType<typeof createIdempotency>;
