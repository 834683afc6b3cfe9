/**
 * Header safety, for every value that ends up in a mail header line (email fields, rendered
 * template subjects, addresses of suppressions): no CR, LF or NUL, the classic header-injection
 * vector, and at most one RFC 5322 line.
 */
import { z } from 'zod';

/** RFC 5322 2.1.1: a line is at most 998 characters, CRLF excluded. */
export const MAX_HEADER_LINE = 998;

/** CR, LF or NUL anywhere: such a value could end a header line and start another. */
const HEADER_BREAK = /[\r\n\0]/;
const NO_HEADER_BREAK = /^[^\r\n\0]*$/;
export const HEADER_BREAK_MESSAGE = 'must not contain CR, LF or NUL characters (header injection)';

export function hasHeaderBreak(value: string): boolean {
  return HEADER_BREAK.test(value);
}

/** Text that ends up in a header line. */
export function headerText(max: number) {
  return z.string().max(max).regex(NO_HEADER_BREAK, HEADER_BREAK_MESSAGE);
}
