/** GET /v1/api-keys: admins can see which keys exist (never the keys themselves). */
import Router from '@koa/router';
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { requireScope } from '../http/auth';
import type { ApiModule } from '../http/module';
import { problemResponses } from '../shared/openapi';
import type { ApiKeyService } from './api-keys';

const apiKeySummary = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    prefix: z.string().meta({ description: 'first characters of the key, for telling keys apart' }),
    scopes: z.array(z.string()),
    createdAt: z.string().datetime(),
    lastUsedAt: z.string().datetime().nullable(),
    revokedAt: z.string().datetime().nullable(),
  })
  .meta({ id: 'ApiKeySummary' });

const paths: ZodOpenApiPathsObject = {
  '/v1/api-keys': {
    get: {
      summary: 'List API keys (admin)',
      tags: ['api-keys'],
      responses: {
        200: { description: 'the keys, oldest first', content: { 'application/json': { schema: z.object({ data: z.array(apiKeySummary) }) } } },
        ...problemResponses(401, 403),
      },
    },
  },
};

export function apiKeyRoutes(deps: { apiKeys: ApiKeyService }): ApiModule {
  const router = new Router({ prefix: '/v1/api-keys' });
  router.get('/', requireScope(deps.apiKeys, 'admin'), async (ctx) => {
    ctx.body = { data: await deps.apiKeys.list() };
  });
  return { router, openapi: paths };
}
