import type { Context, Middleware, Next } from 'koa';
import type { ApiKeyService, AuthenticatedKey } from '../auth/api-keys';
import { hasScope, type Scope } from '../auth/scopes';
import { ForbiddenError } from '../errors';

/** Authenticates the bearer key and checks one scope; the key lands in ctx.state.apiKey. */
export function requireScope(keys: ApiKeyService, scope: Scope) {
  return async function authorize(ctx: Context, next: Next) {
    const key: AuthenticatedKey = ctx.state.apiKey ?? (await keys.authenticate(ctx.get('authorization') || undefined));
    ctx.state.apiKey = key;
    if (!hasScope(key.scopes, scope)) throw new ForbiddenError(`this API key lacks the "${scope}" scope`);
    await next();
  };
}

/** What guards a /v1 route: the key must have `scope`, then the per-key rate limit applies. */
export type RouteGuard = (scope: Scope) => Middleware[];

export function createRouteGuard(deps: { apiKeys: ApiKeyService; rateLimit: Middleware }): RouteGuard {
  return (scope) => [requireScope(deps.apiKeys, scope), deps.rateLimit];
}
