/**
 * OpenAPI parts every API module uses: JSON bodies, RFC 9457 problem responses and the
 * Idempotency-Key header (http/idempotency.ts implements it).
 */
import { z } from 'zod';

/** A JSON request or response body with this schema. */
export const jsonContent = <T>(schema: T) => ({ content: { 'application/json': { schema } } });

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** The header as an OpenAPI request parameter (an operation's `requestParams.header`). */
export const idempotencyKeyHeader = z.object({
  [IDEMPOTENCY_HEADER]: z
    .string()
    .max(255)
    .optional()
    .meta({ description: 'Repeat a request safely: within 24 h the same key and body return the first response; another body is 409.' }),
});

/** RFC 9457 problem details, as every error response of the API. */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ path: z.string().meta({ description: 'JSON pointer to the field' }), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (invalid JSON, or a body that is not what its Content-Encoding says)',
  401: 'Missing or invalid API key',
  403: 'The API key lacks the scope',
  404: 'Not found',
  409: 'Conflict',
  413: 'Request body too large',
  415: 'Body is not application/json, or its Content-Encoding is not gzip, deflate or br',
  422: 'Invalid fields; `errors` names each one',
  429: 'Rate limited (type rate-limited), or on the accept routes a quota of the application exceeded (type quota-exceeded: nothing was stored); see Retry-After',
  503: 'PostgreSQL (named in `detail`) cannot serve the request now; retry after Retry-After',
};

/**
 * problem+json responses for the given statuses, for an operation's `responses`. Every
 * operation reads PostgreSQL, so every one may answer 503 (http/outages.ts).
 */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    [...new Set([...statuses, 503])].map((s) => [String(s), { description: PROBLEM_DESCRIPTIONS[s] ?? 'Error', content: { 'application/problem+json': { schema: problemSchema } } }]),
  );
}

/**
 * Headers of the answers of a route that counts against an application's quotas (http/quotas.ts),
 * present when the application has set a quota of the route's kind: the quota with the least room
 * left after the request (on a 429, the quota that refused it).
 */
export const quotaHeaders = z.object({
  'X-Quota-Name': z.enum(['emailQuotaPerMinute', 'emailQuotaPerDay', 'eventQuotaPerMinute', 'eventQuotaPerDay']).optional().meta({ description: 'the application setting that holds the quota' }),
  'X-Quota-Limit': z.number().int().min(0).optional().meta({ description: 'the quota' }),
  'X-Quota-Remaining': z.number().int().min(0).optional().meta({ description: 'units left in its current window' }),
  'X-Quota-Reset': z.number().int().min(0).optional().meta({ description: 'seconds until its window ends' }),
});

/** `responses` of an accept route: its success answer and the problems, each with the quota headers. */
export function withQuotaHeaders<R extends Record<string, object>>(responses: R): R {
  return Object.fromEntries(Object.entries(responses).map(([status, r]) => [status, status === '202' || status === '429' ? { ...r, headers: quotaHeaders } : r])) as R;
}
