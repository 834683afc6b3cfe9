/** The /v1 routers each domain contributes. One line per domain; order does not matter. */
import type Router from '@koa/router';
import type { Container } from '../container';

export function buildApiRouters(_c: Container): Router[] {
  return [];
}
