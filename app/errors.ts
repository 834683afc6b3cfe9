/**
 * The domain's typed errors. Domain code throws these; one Koa middleware (http/problem.ts) maps
 * them to RFC 9457 problem+json. Their messages are written for the client and always shown.
 * Anything else follows koa's `expose` rule: a 4xx error's message is shown only when it says
 * `expose: true`; everything else is an internal error: logged, answered as a generic 500.
 */

export interface FieldError {
  /** JSON-pointer-like path to the offending field, e.g. "/to/2". */
  path: string;
  message: string;
}

export abstract class AppError extends Error {
  abstract readonly status: number;
  abstract readonly type: string;
  abstract readonly title: string;
  /** Extra response headers (e.g. Retry-After). */
  headers: Record<string, string> = {};
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  readonly status = 422;
  readonly type = 'validation-error';
  readonly title = 'Invalid request';
  constructor(
    message: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
  }
}

export class BadRequestError extends AppError {
  readonly status = 400;
  readonly type = 'bad-request';
  readonly title = 'Bad request';
}

export class UnauthorizedError extends AppError {
  readonly status = 401;
  readonly type = 'unauthorized';
  readonly title = 'Unauthorized';
  constructor(message: string) {
    super(message);
    this.headers = { 'WWW-Authenticate': 'Bearer realm="easeemail"' };
  }
}

export class ForbiddenError extends AppError {
  readonly status = 403;
  readonly type = 'forbidden';
  readonly title = 'Forbidden';
}

export class NotFoundError extends AppError {
  readonly status = 404;
  readonly type = 'not-found';
  readonly title = 'Not found';
}

export class MethodNotAllowedError extends AppError {
  readonly status = 405;
  readonly type = 'method-not-allowed';
  readonly title = 'Method not allowed';
  constructor(method: string, allowed: string[]) {
    super(`${method} is not allowed here; use ${allowed.join(', ')}`);
    this.headers = { Allow: allowed.join(', ') };
  }
}

export class ConflictError extends AppError {
  readonly status = 409;
  readonly type = 'conflict';
  readonly title = 'Conflict';
}

export class PayloadTooLargeError extends AppError {
  readonly status = 413;
  readonly type = 'payload-too-large';
  readonly title = 'Payload too large';
}

export class UnsupportedMediaTypeError extends AppError {
  readonly status = 415;
  readonly type = 'unsupported-media-type';
  readonly title = 'Unsupported media type';
}

/** A wait as the client is told it (Retry-After, quota resets): whole seconds, rounded up, at least 1. */
export function wholeSecondsToWait(seconds: number): number {
  return Math.max(1, Math.ceil(seconds));
}

/** An answer that asks the client to come back: Retry-After in whole seconds, at least 1. */
abstract class RetryLaterError extends AppError {
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.headers = { 'Retry-After': String(wholeSecondsToWait(retryAfterSeconds)) };
  }
}

export class RateLimitedError extends RetryLaterError {
  readonly status = 429;
  readonly type = 'rate-limited';
  readonly title = 'Too many requests';
}

/**
 * An application's quota (emails or events per minute or per day) has no room for the request;
 * it was refused whole and consumed nothing. Retry-After: until the quota's window resets.
 */
export class QuotaExceededError extends RetryLaterError {
  readonly status = 429;
  readonly type = 'quota-exceeded';
  readonly title = 'Quota exceeded';
}

/** A dependency (PostgreSQL, Redis) cannot serve the request now; the client may retry later. */
export class ServiceUnavailableError extends RetryLaterError {
  readonly status = 503;
  readonly type = 'service-unavailable';
  readonly title = 'Service unavailable';
}
