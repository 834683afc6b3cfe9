/**
 * /v1/api-keys: which keys exist (never the keys themselves), and, for platform keys, creating
 * and revoking application keys. Platform keys are made only by the CLI or BOOTSTRAP_API_KEY.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import type { ApplicationService } from '../applications';
import { ValidationError } from '../errors';
import { requirePlatform, requireScopeOrPlatform, type Authenticator } from '../http/auth';
import type { ApiModule } from '../http/module';
import { parseWith } from '../http/validate';
import { jsonContent as json, problemResponses } from '../shared/openapi';
import type { ApiKeyService } from './api-keys';
import { PLATFORM_SCOPE, SCOPES } from './scopes';

const TAGS = ['api-keys'];

const apiKeySummary = z
  .object({
    id: z.string().uuid(),
    applicationId: z.string().uuid().nullable().meta({ description: 'null for platform keys' }),
    name: z.string(),
    prefix: z.string().meta({ description: 'first characters of the key, for telling keys apart' }),
    scopes: z.array(z.string()),
    createdAt: z.string().datetime(),
    lastUsedAt: z.string().datetime().nullable(),
    revokedAt: z.string().datetime().nullable(),
  })
  .meta({ id: 'ApiKeySummary' });

const APPLICATION_SCOPES = SCOPES.filter((s) => s !== PLATFORM_SCOPE);
const createApiKeySchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    application: z.string().min(1).max(100).meta({ description: 'the application (name or id) the key belongs to' }),
    scopes: z.array(z.enum(APPLICATION_SCOPES)).min(1).max(APPLICATION_SCOPES.length),
  })
  .meta({ id: 'CreateApiKey' });
const createdApiKeySchema = apiKeySummary.extend({ key: z.string().meta({ description: 'the key itself, shown only this once' }) }).meta({ id: 'CreatedApiKey' });
const apiKeyParams = z.object({ id: z.uuid() });

const paths: ZodOpenApiPathsObject = {
  '/v1/api-keys': {
    get: {
      operationId: 'listApiKeys',
      summary: "List API keys: an admin key sees its application's, a platform key every key (or one application's with X-Application)",
      tags: TAGS,
      responses: { 200: { description: 'the keys, oldest first', ...json(z.object({ data: z.array(apiKeySummary) })) }, ...problemResponses(401, 403, 404) },
    },
    post: {
      operationId: 'createApiKey',
      summary: "Create a key of an application (platform keys); the key is in the answer, once",
      tags: TAGS,
      requestBody: json(createApiKeySchema),
      responses: { 201: { description: 'created', ...json(createdApiKeySchema) }, ...problemResponses(400, 401, 403, 404, 415, 422) },
    },
  },
  '/v1/api-keys/{id}/revoke': {
    post: {
      operationId: 'revokeApiKey',
      summary: 'Revoke a key (platform keys); it stops working within API_KEY_CACHE_TTL_MS',
      tags: TAGS,
      requestParams: { path: apiKeyParams },
      responses: { 200: { description: 'the revoked key', ...json(apiKeySummary) }, ...problemResponses(401, 403, 404) },
    },
  },
};

export function apiKeyRoutes(deps: { apiKeys: ApiKeyService; applications: ApplicationService; auth: Authenticator }): ApiModule {
  const { apiKeys, applications } = deps;
  const router = new Router({ prefix: '/v1/api-keys' });
  router.get('/', requireScopeOrPlatform(deps.auth, 'admin'), async (ctx) => {
    ctx.body = { data: await apiKeys.list({ applicationId: ctx.state.application?.id }) };
  });
  router.post('/', requirePlatform(deps.auth), async (ctx) => {
    const input = parseWith(createApiKeySchema, ctx.request.body);
    const application = await applications.get(input.application).catch(() => {
      throw new ValidationError(`no application ${JSON.stringify(input.application)}`, [{ path: '/application', message: 'no such application' }]);
    });
    const { key, summary } = await apiKeys.create({ name: input.name, scopes: input.scopes, applicationId: application.id });
    ctx.status = 201;
    ctx.body = { ...summary, key };
  });
  router.post('/:id/revoke', requirePlatform(deps.auth), async (ctx) => {
    ctx.body = await apiKeys.revoke(parseWith(apiKeyParams, ctx.params, 'path').id);
  });
  return { router, openapi: paths };
}
