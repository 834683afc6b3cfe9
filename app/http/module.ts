/**
 * What an API module (one domain's routes) gives the api role: a router and the OpenAPI paths
 * that describe it (built from the same zod schemas that validate). The api root (app/api.ts)
 * lists the modules; a module never sees the others.
 */
import type Router from '@koa/router';
import type { ZodOpenApiPathsObject } from 'zod-openapi';

export interface ApiModule {
  router: Router;
  openapi: ZodOpenApiPathsObject;
}
