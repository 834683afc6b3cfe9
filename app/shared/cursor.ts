/**
 * Opaque page cursors: the position of the last row, as base64url text. A cursor is accepted
 * only if it is exactly what this API would have issued (it re-encodes to itself and its text
 * passes the list's own check); anything else is a 422 naming the `cursor` field.
 */
import { ValidationError } from '../errors';

export function encodeCursor(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** The text of a cursor this API issued; `isValid` checks the list's own format. */
export function decodeCursor(cursor: string, isValid: (text: string) => boolean): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (encodeCursor(text) !== cursor || !isValid(text)) {
    throw new ValidationError('invalid cursor: pass nextCursor from the previous page unchanged', [{ path: '/cursor', message: 'not a cursor this API issued' }]);
  }
  return text;
}

/**
 * Keyset cursors for listings that go newest first on (createdAt, id): the cursor names the last
 * row of a page, and the next page is the rows strictly before it in that order. Rows created
 * while a client pages through land before its first page, so paging never shows a row twice
 * nor skips one that existed when it started (unlike OFFSET).
 */
export interface Keyset {
  createdAt: Date;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodeKeysetCursor(createdAt: Date, id: string): string {
  return encodeCursor(`${createdAt.toISOString()}|${id}`);
}

/** The keyset a cursor names; a ValidationError at `/cursor` for anything else. */
export function decodeKeysetCursor(cursor: string): Keyset {
  const [iso, id] = decodeCursor(cursor, (text) => {
    const [at, uuid, extra] = text.split('|');
    const date = new Date(at ?? '');
    return extra === undefined && uuid !== undefined && UUID.test(uuid) && !Number.isNaN(date.getTime()) && date.toISOString() === at;
  }).split('|');
  return { createdAt: new Date(iso), id };
}

/** Prisma condition for "strictly before `after`" in (createdAt desc, id desc) order. */
export function beforeKeyset(after: Keyset | undefined) {
  return after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {};
}

/** Cuts the `limit + 1` rows fetched into a page and the cursor of the next one (null at the end). */
export function pageOf<R extends Keyset>(rows: R[], limit: number): { page: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { page, nextCursor: rows.length > limit && last ? encodeKeysetCursor(last.createdAt, last.id) : null };
}
