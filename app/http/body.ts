/**
 * Request bodies, one policy for every route:
 * - JSON only, as `application/json`: other types, including JSON dialects whose meaning differs
 *   (`json-patch+json`, `merge-patch+json`, `problem+json`), are a 415 rather than read as plain JSON;
 * - `Content-Encoding` identity, gzip, deflate or br (what the parser decodes); BODY_LIMIT_BYTES
 *   caps the decoded size, so a compression bomb stops at the limit; any other coding is a 415
 *   with `Accept-Encoding`; a body that is not what its coding claims is a 400;
 * - the parser's failures become typed errors with a detail that says what to fix;
 * - every string of the body and the query string obeys the shared input rules (shared/text.ts).
 */
import { bodyParser } from '@koa/bodyparser';
import type { Context, Next } from 'koa';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../errors';
import { jsonInputProblems } from '../shared/text';

export const ACCEPTED_CONTENT_CODINGS = ['identity', 'gzip', 'deflate', 'br'];

function hasBody(ctx: Context): boolean {
  return ctx.request.length > 0 || ctx.get('transfer-encoding') !== '';
}

function refuseUnreadable(ctx: Context): void {
  if (!hasBody(ctx) || !['POST', 'PUT', 'PATCH'].includes(ctx.method)) return;
  if (!ctx.is('application/json')) {
    throw new UnsupportedMediaTypeError(`send the body as application/json (got ${ctx.get('content-type') || 'no Content-Type'})`);
  }
  const coding = (ctx.get('content-encoding') || 'identity').trim().toLowerCase();
  if (!ACCEPTED_CONTENT_CODINGS.includes(coding)) {
    const refused = new UnsupportedMediaTypeError(`Content-Encoding "${coding.slice(0, 40)}" is not supported; send ${ACCEPTED_CONTENT_CODINGS.join(', ')}`);
    refused.headers = { 'Accept-Encoding': ACCEPTED_CONTENT_CODINGS.filter((c) => c !== 'identity').join(', ') };
    throw refused;
  }
}

interface ParserError {
  status?: number;
  type?: string;
  code?: string;
  message?: string;
}

/** The parser's errors (raw-body, zlib, JSON.parse), as errors a client can act on. */
function clientError(err: unknown, ctx: Context): unknown {
  const e = err as ParserError;
  if (e?.status === 413 || e?.type === 'entity.too.large') return new PayloadTooLargeError('request body is too large (BODY_LIMIT_BYTES, counted after decompression)');
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) {
    return new BadRequestError(`request body is not valid ${ctx.get('content-encoding')} data (${e.message ?? e.code})`);
  }
  if (err instanceof SyntaxError) return new BadRequestError(`request body is not valid JSON: ${e.message}`);
  if (e?.type === 'request.aborted' || e?.type === 'request.size.invalid') return new BadRequestError(`request body is incomplete (${e.type})`);
  return err;
}

export function jsonBody(limitBytes: number) {
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: limitBytes, jsonStrict: true });
  return async function body(ctx: Context, next: Next) {
    refuseUnreadable(ctx);
    try {
      await parse(ctx, async () => undefined);
    } catch (err) {
      throw clientError(err, ctx);
    }
    for (const [what, input] of [['query', ctx.query], ['request body', ctx.request.body]] as const) {
      const problems = jsonInputProblems(input);
      if (problems.length > 0) throw new ValidationError(`invalid ${what}: ${problems[0].path}: ${problems[0].message}`, problems);
    }
    return next();
  };
}
