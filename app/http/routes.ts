/**
 * The /v1 API: each domain contributes a router and the OpenAPI paths that describe it (built
 * from the same zod schemas that validate). One line per domain; order does not matter.
 */
import type Router from '@koa/router';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { apiKeysModule } from '../auth/routes';
import type { Container } from '../container';
import { createEmailsApi } from '../email/routes';
import { createTemplatesApi } from '../templates/routes';
import { createWebhooksApi } from '../webhooks/routes';

export interface ApiModule {
  router: Router;
  openapi: ZodOpenApiPathsObject;
}

export function buildApiModules(c: Container): ApiModule[] {
  return [
    apiKeysModule(c),
    createEmailsApi(c),
    createTemplatesApi(c),
    createWebhooksApi(c),
  ];
}
