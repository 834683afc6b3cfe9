/**
 * What happens when no route took the request, for a path that exists (mounted after every router):
 * - `OPTIONS` → 204 with `Allow`. No CORS headers: the API is called server to server with a
 *   secret key, never from a browser page, so preflights are not answered;
 * - any other method (PUT where only POST exists, TRACE, ...) → 405 problem+json with `Allow`.
 * A path no route knows stays a 404 whatever the method.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { MethodNotAllowedError } from '../errors';

function allowedMethods(routers: Router[], path: string): string[] {
  const allowed = new Set<string>();
  for (const router of routers) {
    // `match` reports the layers whose path matches whatever the method; middleware layers have none.
    for (const layer of router.match(path, 'GET').path) for (const m of layer.methods) allowed.add(m);
  }
  if (allowed.size > 0) allowed.add('OPTIONS');
  return [...allowed];
}

export function unmatchedMethods(routers: Router[]) {
  return function unmatched(ctx: Context) {
    const allowed = allowedMethods(routers, ctx.path);
    if (allowed.length === 0) return; // stays a 404
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      ctx.set('Allow', allowed.join(', '));
      return;
    }
    throw new MethodNotAllowedError(ctx.method, allowed);
  };
}
