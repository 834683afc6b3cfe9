/**
 * The suppression list of an application: addresses the worker will not send to. Hard bounces
 * and complaints add themselves (inbound/reports.ts, in the report's transaction); people add
 * (`manual`) and remove entries through the API. One entry per application and address
 * (unique index): adding an address already listed returns the existing entry unchanged.
 */
import type { Db } from '../db/client';
import { NotFoundError } from '../errors';
import { decodeCursor, encodeCursor } from '../shared/cursor';
import type { Suppression } from '../generated/prisma/client';
import type { CreateSuppressionInput, SuppressionReason } from './schemas';

/** Listed by (createdAt, id), newest first: the cursor is the last row's `<ISO time>|<id>`. */
function cursorOf(s: Suppression): string {
  return encodeCursor(`${s.createdAt.toISOString()}|${s.id}`);
}

function positionOf(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = decodeCursor(cursor, (text) => /^\d{4}-\d\d-\d\dT[\d:.]+Z\|[0-9a-f-]{36}$/.test(text) && !Number.isNaN(Date.parse(text.split('|')[0]))).split('|');
  return { createdAt: new Date(iso), id };
}

function view(s: Suppression) {
  return { address: s.address, reason: s.reason, emailId: s.emailId, detail: s.detail, createdAt: s.createdAt.toISOString() };
}

export function createSuppressionService(deps: { db: Db }) {
  const { db } = deps;

  async function list(applicationId: string, query: { reason?: SuppressionReason; search?: string; limit: number; cursor?: string }) {
    const after = query.cursor !== undefined ? positionOf(query.cursor) : undefined;
    const rows = await db.suppression.findMany({
      where: {
        applicationId,
        ...(query.reason ? { reason: query.reason } : {}),
        // Prisma passes `contains` to ILIKE as it is: % and _ are escaped so a search means its characters.
        ...(query.search ? { address: { contains: query.search.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' } } : {}),
        ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return { data: page.map(view), nextCursor: rows.length > query.limit ? cursorOf(last) : null };
  }

  /** Adds a manual entry; `created` is false when the address was listed already (kept as it was). */
  async function add(applicationId: string, input: CreateSuppressionInput) {
    const inserted = await db.suppression.createManyAndReturn({
      data: [{ applicationId, address: input.address, reason: input.reason, detail: input.detail ?? null }],
      skipDuplicates: true,
    });
    if (inserted.length > 0) return { created: true, suppression: view(inserted[0]) };
    const existing = await db.suppression.findUniqueOrThrow({ where: { applicationId_address: { applicationId, address: input.address } } });
    return { created: false, suppression: view(existing) };
  }

  /** `address` normalised (schemas.ts). */
  async function remove(applicationId: string, address: string): Promise<void> {
    const { count } = await db.suppression.deleteMany({ where: { applicationId, address } });
    if (count === 0) throw new NotFoundError(`${address} is not on the suppression list`);
  }

  return { list, add, remove };
}

export type SuppressionService = ReturnType<typeof createSuppressionService>;
