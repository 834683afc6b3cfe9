/** /v1/suppressions: list, add (manual), remove. Scope: suppressions:manage (or admin). */
import Router from '@koa/router';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { applicationOf } from '../shared/application';
import { jsonContent as json, problemResponses } from '../shared/openapi';
import type { RouteGuard } from '../http/auth';
import type { ApiModule } from '../http/module';
import { parseWith } from '../http/validate';
import { createSuppressionSchema, suppressionAddress, suppressionListQuery, suppressionListSchema, suppressionParams, suppressionSchema } from './schemas';
import type { SuppressionService } from './service';

const TAGS = ['Suppressions'];

export const suppressionsOpenApi: ZodOpenApiPathsObject = {
  '/v1/suppressions': {
    get: {
      operationId: 'listSuppressions',
      summary: 'List suppressed addresses, newest first',
      description: 'The worker does not send to these addresses: an email left with no recipient ends `suppressed`.',
      tags: TAGS,
      requestParams: { query: suppressionListQuery },
      responses: { '200': { description: 'A page of suppressions', ...json(suppressionListSchema) }, ...problemResponses(401, 403, 422, 429) },
    },
    post: {
      operationId: 'addSuppression',
      summary: 'Suppress an address by hand',
      tags: TAGS,
      requestBody: json(createSuppressionSchema),
      responses: {
        '201': { description: 'Added', ...json(suppressionSchema) },
        '200': { description: 'Already suppressed; the existing entry, unchanged', ...json(suppressionSchema) },
        ...problemResponses(400, 401, 403, 413, 415, 422, 429),
      },
    },
  },
  '/v1/suppressions/{address}': {
    delete: {
      operationId: 'removeSuppression',
      summary: 'Remove an address from the suppression list (it will be sent to again)',
      tags: TAGS,
      requestParams: { path: suppressionParams },
      responses: { '204': { description: 'Removed' }, ...problemResponses(401, 403, 404, 422, 429) },
    },
  },
};

export function suppressionRoutes(deps: { suppressions: SuppressionService; auth: RouteGuard }): ApiModule {
  const { suppressions, auth } = deps;
  const guard = auth('suppressions:manage');
  const router = new Router();

  router.get('/v1/suppressions', ...guard, async (ctx) => {
    ctx.body = await suppressions.list(applicationOf(ctx).id, parseWith(suppressionListQuery, ctx.query, 'query'));
  });
  router.post('/v1/suppressions', ...guard, async (ctx) => {
    const { created, suppression } = await suppressions.add(applicationOf(ctx).id, parseWith(createSuppressionSchema, ctx.request.body));
    ctx.status = created ? 201 : 200;
    ctx.body = suppression;
  });
  router.delete('/v1/suppressions/:address', ...guard, async (ctx) => {
    await suppressions.remove(applicationOf(ctx).id, parseWith(suppressionAddress, ctx.params.address, 'address'));
    ctx.status = 204;
  });

  return { router, openapi: suppressionsOpenApi };
}
