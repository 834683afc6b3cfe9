/**
 * Input rules that hold for every route, in one place:
 * - safe text: no NUL (PostgreSQL text and jsonb refuse U+0000) and no unpaired UTF-16 surrogate
 *   (not Unicode: jsonb refuses the escape, text columns would silently store U+FFFD). A string
 *   breaking either rule is refused with a 422 naming its field, never rewritten.
 * - a nesting limit for JSON bodies, so that no recursive step later (validation, hashing,
 *   serialization) can exhaust the stack: 32 levels of objects/arrays, the body itself counting
 *   as one. Real payloads nest a handful of levels; a fuzzer's 10,000 are refused with a 422.
 * - strict decimal integers in query strings (`limit=0x10` is not 16).
 * The http layer applies the first two to every JSON body and query string (http/input-rules.ts);
 * schemas use `decimalInt` and `SINGLE_LINE_TOKEN`.
 */
import { z } from 'zod';
import type { FieldError } from '../errors';

export const MAX_JSON_DEPTH = 32;

/** Reports at most this many bad fields per request: enough to fix them, bounded work. */
const MAX_REPORTED = 20;

/** String.prototype.isWellFormed (Node 20; newer than the compiler's lib): native, linear. */
const isWellFormed = (value: string): boolean => (value as unknown as { isWellFormed(): boolean }).isWellFormed();

export function unsafeTextProblem(value: string): string | undefined {
  if (value.includes('\0')) return 'must not contain NUL (U+0000) characters';
  if (!isWellFormed(value)) return 'must not contain unpaired UTF-16 surrogates (the text is not valid Unicode)';
  return undefined;
}

function pointerToken(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Every string (object keys included) breaking the safe-text rule and any nesting past
 * MAX_JSON_DEPTH, as JSON-pointer field errors. The walk stops at the depth limit, so it never
 * recurses deeper than MAX_JSON_DEPTH itself.
 */
export function jsonInputProblems(value: unknown, basePath = ''): FieldError[] {
  const problems: FieldError[] = [];
  const visit = (v: unknown, path: string, depth: number): void => {
    if (problems.length >= MAX_REPORTED) return;
    if (typeof v === 'string') {
      const problem = unsafeTextProblem(v);
      if (problem) problems.push({ path: path || '/', message: problem });
      return;
    }
    if (v === null || typeof v !== 'object') return;
    if (depth > MAX_JSON_DEPTH) {
      problems.push({ path: path || '/', message: `nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays` });
      return;
    }
    if (Array.isArray(v)) {
      v.forEach((item, i) => visit(item, `${path}/${i}`, depth + 1));
      return;
    }
    for (const [key, item] of Object.entries(v)) {
      const keyProblem = unsafeTextProblem(key);
      // The key itself cannot be shown safely in the pointer; name the object holding it.
      if (keyProblem) problems.push({ path: path || '/', message: `a property name ${keyProblem}` });
      else visit(item, `${path}/${pointerToken(key)}`, depth + 1);
    }
  };
  visit(value, basePath, 1);
  return problems;
}

/** A query-string integer written in plain decimal digits, within [min, max]. */
export function decimalInt(min: number, max: number) {
  return z
    .string()
    .regex(/^[0-9]{1,9}$/, 'must be a whole number in decimal digits')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

/** A value that must stay one token: no whitespace, no C0 control characters (CR, LF, NUL, tab), no DEL. */
export const SINGLE_LINE_TOKEN = /^[^\s\x00-\x1f\x7f]*$/;
