/**
 * The one error mapper (koa's `expose` model): domain errors (AppError) become RFC 9457
 * problem+json with their status and message. Other errors with a 4xx status (koa's ctx.throw,
 * http-errors) keep their status, but their message is shown only when they say `expose: true`
 * (koa's rule: a missing `expose` is not exposable). A 5xx or a status-less error is logged and
 * answered as a generic 500 that reveals nothing.
 */
import type { Context, Next } from 'koa';
import { AppError, ValidationError, type FieldError } from '../errors';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const PROBLEM_BASE = 'https://easeemail.dev/problems/';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  requestId?: string;
  errors?: FieldError[];
}

interface HttpLikeError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  message?: string;
  headers?: Record<string, string>;
}

const CLIENT_ERROR_TYPES: Record<number, [slug: string, title: string]> = {
  400: ['bad-request', 'Bad request'],
  401: ['unauthorized', 'Unauthorized'],
  403: ['forbidden', 'Forbidden'],
  404: ['not-found', 'Not found'],
  405: ['method-not-allowed', 'Method not allowed'],
  406: ['not-acceptable', 'Not acceptable'],
  409: ['conflict', 'Conflict'],
  411: ['length-required', 'Length required'],
  413: ['payload-too-large', 'Payload too large'],
  415: ['unsupported-media-type', 'Unsupported media type'],
  422: ['validation-error', 'Invalid request'],
  429: ['rate-limited', 'Too many requests'],
};

export function toProblem(err: unknown, ctx: Context): { problem: Problem; headers: Record<string, string> } | undefined {
  const base = { instance: ctx.path, requestId: ctx.state.requestId as string | undefined };
  if (err instanceof AppError) {
    return {
      problem: {
        type: PROBLEM_BASE + err.type,
        title: err.title,
        status: err.status,
        detail: err.message,
        ...base,
        ...(err instanceof ValidationError && err.errors.length ? { errors: err.errors } : {}),
      },
      headers: err.headers,
    };
  }
  const e = err as HttpLikeError;
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const [slug, title] = CLIENT_ERROR_TYPES[status] ?? ['client-error', 'Client error'];
    const detail = e.expose === true && e.message ? e.message : title;
    return { problem: { type: PROBLEM_BASE + slug, title, status, detail, ...base }, headers: e.headers ?? {} };
  }
  return undefined;
}

export function sendProblem(ctx: Context, problem: Problem, headers: Record<string, string> = {}): void {
  ctx.status = problem.status;
  for (const [k, v] of Object.entries(headers)) ctx.set(k, v);
  ctx.type = PROBLEM_CONTENT_TYPE;
  ctx.body = problem;
}

export function problemMiddleware() {
  return async function problems(ctx: Context, next: Next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        sendProblem(ctx, { type: PROBLEM_BASE + 'not-found', title: 'Not found', status: 404, detail: `no route for ${ctx.method} ${ctx.path}`, instance: ctx.path, requestId: ctx.state.requestId });
      }
    } catch (err) {
      const mapped = toProblem(err, ctx);
      if (mapped) {
        sendProblem(ctx, mapped.problem, mapped.headers);
        return;
      }
      ctx.state.log?.error({ err }, 'unhandled error');
      ctx.state.unhandledError = true;
      sendProblem(ctx, {
        type: PROBLEM_BASE + 'internal-error',
        title: 'Internal server error',
        status: 500,
        detail: 'the server failed to handle this request; it has been logged',
        instance: ctx.path,
        requestId: ctx.state.requestId,
      });
    }
  };
}
