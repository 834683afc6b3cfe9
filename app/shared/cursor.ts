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
