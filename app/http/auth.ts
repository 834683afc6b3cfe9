/**
 * Authentication and the caller's application. One rule for which application a request acts on:
 *
 * - a key of an application acts on that application, always (an X-Application header naming
 *   another one is refused with 403, whether or not that one exists: no existence leak);
 * - a platform key (scope platform:admin, no application) acts on an application only when the
 *   request names it in the X-Application header (its name or id); without the header it can
 *   only use the platform routes (/v1/applications, /v1/api-keys).
 *
 * The key lands in ctx.state.apiKey, the application in ctx.state.application (read it with
 * `applicationOf(ctx)`), and the request's logger gains an `application` field.
 */
import type { Context, Middleware, Next } from 'koa';
import type { ApiKeyService, AuthenticatedKey } from '../auth/api-keys';
import { hasScope, PLATFORM_SCOPE, type Scope } from '../auth/scopes';
import { BadRequestError, ForbiddenError, NotFoundError } from '../errors';
import type { ApplicationContext, ApplicationLookup } from '../shared/application';
import type { QuotaUse } from './quotas';
import type { RateLimit } from './rate-limit';
import { bindRequestLog } from './request-context';

export const APPLICATION_HEADER = 'X-Application';

export interface Authenticator {
  apiKeys: ApiKeyService;
  applications: ApplicationLookup;
}

async function authenticatedKey(ctx: Context, auth: Authenticator): Promise<AuthenticatedKey> {
  const key: AuthenticatedKey = ctx.state.apiKey ?? (await auth.apiKeys.authenticate(ctx.get('authorization') || undefined));
  ctx.state.apiKey = key;
  return key;
}

/** The application the request acts on under the rule above; undefined for a platform key that names none. */
async function requestedApplication(ctx: Context, auth: Authenticator, key: AuthenticatedKey): Promise<ApplicationContext | undefined> {
  const named = ctx.get(APPLICATION_HEADER).trim();
  if (key.application) {
    const { disabled, ...application } = key.application;
    if (disabled) throw new ForbiddenError(`application "${application.name}" is disabled; its keys do not work until a platform team enables it`);
    if (named !== '' && named !== application.name && named.toLowerCase() !== application.id) {
      throw new ForbiddenError(`this API key belongs to application "${application.name}" and acts only on it; drop the ${APPLICATION_HEADER} header or name that application`);
    }
    return application;
  }
  if (named === '') return undefined;
  const resolved = await auth.applications.forRequest(named);
  if (!resolved) throw new NotFoundError(`no application ${JSON.stringify(named.slice(0, 80))} (${APPLICATION_HEADER} takes an application's name or id)`);
  if (resolved.disabled) throw new ForbiddenError(`application "${resolved.application.name}" is disabled; enable it first`);
  return resolved.application;
}

function enter(ctx: Context, application: ApplicationContext): void {
  ctx.state.application = application;
  bindRequestLog(ctx, { application: application.name, applicationId: application.id });
}

/**
 * For the routes of an application's resources: the key must have `scope`, and the request acts
 * on one application (its key's, or the one a platform key names).
 */
export function requireScope(auth: Authenticator, scope: Scope) {
  return async function authorize(ctx: Context, next: Next) {
    const key = await authenticatedKey(ctx, auth);
    if (!hasScope(key.scopes, scope)) throw new ForbiddenError(`this API key lacks the "${scope}" scope`);
    const application = ctx.state.application ?? (await requestedApplication(ctx, auth, key));
    if (!application) {
      throw new BadRequestError(`a platform key acts on an application only when the request names it: send the ${APPLICATION_HEADER} header with its name or id`);
    }
    enter(ctx, application);
    await next();
  };
}

/**
 * For routes that work across applications for platform keys and within its own application
 * for an application key with `scope` (GET /v1/api-keys). ctx.state.application is unset for a
 * platform key that names none.
 */
export function requireScopeOrPlatform(auth: Authenticator, scope: Scope) {
  return async function authorize(ctx: Context, next: Next) {
    const key = await authenticatedKey(ctx, auth);
    if (!hasScope(key.scopes, scope)) throw new ForbiddenError(`this API key lacks the "${scope}" scope`);
    const application = await requestedApplication(ctx, auth, key);
    if (application) enter(ctx, application);
    await next();
  };
}

/** For the platform routes (/v1/applications): platform keys only; X-Application plays no part. */
export function requirePlatform(auth: Authenticator) {
  return async function authorize(ctx: Context, next: Next) {
    const key = await authenticatedKey(ctx, auth);
    if (!key.scopes.includes(PLATFORM_SCOPE)) throw new ForbiddenError(`this route is for platform keys (scope "${PLATFORM_SCOPE}"), made with "easeemail api-keys create --scopes ${PLATFORM_SCOPE}"`);
    await next();
  };
}

/**
 * What guards a /v1 route of an application's resources: `scope` on the request's application,
 * then its rate limit, and, for a route that accepts emails or events, its quotas of that kind
 * (`quota`; checked in the same Redis call as the rate limit).
 */
export type RouteGuard = (scope: Scope, quota?: QuotaUse) => Middleware[];

export function createRouteGuard(deps: Authenticator & { rateLimit: Pick<RateLimit, 'requests' | 'counting'> }): RouteGuard {
  return (scope, quota) => [requireScope(deps, scope), quota ? deps.rateLimit.counting(quota) : deps.rateLimit.requests];
}
