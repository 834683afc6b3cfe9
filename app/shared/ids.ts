/** Row ids are UUIDs: the check every route and service uses before asking the database. */
import { NotFoundError } from '../errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function looksLikeUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * A path id that is not a UUID cannot name a row, so it is a 404 rather than a database error.
 * `notFound` gets the value quoted and cut to 60 characters.
 */
export function rowIdOr404(value: string, notFound: (quoted: string) => string): string {
  if (!looksLikeUuid(value)) throw new NotFoundError(notFound(JSON.stringify(value.slice(0, 60))));
  return value;
}
