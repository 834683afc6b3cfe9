import type { ZodType, z } from 'zod';
import { ValidationError, type FieldError } from '../errors';

function pointer(path: PropertyKey[]): string {
  return '/' + path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

/** Parses with a zod schema; on failure throws a ValidationError naming every bad field. */
export function parseWith<S extends ZodType>(schema: S, input: unknown, what = 'request body'): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors: FieldError[] = result.error.issues.map((i) => ({ path: pointer(i.path), message: i.message }));
  const first = errors[0];
  const summary = errors.length === 1 ? `${first.path}: ${first.message}` : `${errors.length} problems, first ${first.path}: ${first.message}`;
  throw new ValidationError(`invalid ${what}: ${summary}`, errors);
}
