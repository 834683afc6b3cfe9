/** /v1/templates: CRUD by id or name, and a render preview. Scope: templates:manage. */
import Router from '@koa/router';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import type { RouteGuard } from '../http/auth';
import type { ApiModule } from '../http/module';
import { parseWith } from '../http/validate';
import { applicationOf } from '../shared/application';
import { jsonContent as json, problemResponses } from '../shared/openapi';
import {
  createTemplateSchema,
  renderedTemplateSchema,
  renderTemplateSchema,
  templateListQuery,
  templateListSchema,
  templateParams,
  templateSchema,
  updateTemplateSchema,
} from './schemas';
import type { TemplateService } from './service';

const TAGS = ['Templates'];

export const templatesOpenApi: ZodOpenApiPathsObject = {
  '/v1/templates': {
    post: {
      operationId: 'createTemplate',
      summary: 'Create a template',
      tags: TAGS,
      requestBody: json(createTemplateSchema),
      responses: { '201': { description: 'Created', ...json(templateSchema) }, ...problemResponses(400, 401, 403, 409, 415, 422, 429) },
    },
    get: {
      operationId: 'listTemplates',
      summary: 'List templates by name',
      tags: TAGS,
      requestParams: { query: templateListQuery },
      responses: { '200': { description: 'A page of templates', ...json(templateListSchema) }, ...problemResponses(401, 403, 422, 429) },
    },
  },
  '/v1/templates/{idOrName}': {
    get: {
      operationId: 'getTemplate',
      summary: 'Get a template',
      tags: TAGS,
      requestParams: { path: templateParams },
      responses: { '200': { description: 'The template', ...json(templateSchema) }, ...problemResponses(401, 403, 404, 429) },
    },
    patch: {
      operationId: 'updateTemplate',
      summary: 'Change a template (queued emails keep what they were rendered with)',
      tags: TAGS,
      requestParams: { path: templateParams },
      requestBody: json(updateTemplateSchema),
      responses: { '200': { description: 'The changed template', ...json(templateSchema) }, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429) },
    },
    delete: {
      operationId: 'deleteTemplate',
      summary: 'Delete a template',
      tags: TAGS,
      requestParams: { path: templateParams },
      responses: { '204': { description: 'Deleted' }, ...problemResponses(401, 403, 404, 429) },
    },
  },
  '/v1/templates/{idOrName}/render': {
    post: {
      operationId: 'renderTemplate',
      summary: 'Preview a template with data',
      tags: TAGS,
      requestParams: { path: templateParams },
      requestBody: json(renderTemplateSchema),
      responses: { '200': { description: 'Rendered subject and bodies', ...json(renderedTemplateSchema) }, ...problemResponses(400, 401, 403, 404, 415, 422, 429) },
    },
  },
};

export function templateRoutes(deps: { templates: TemplateService; auth: RouteGuard }): ApiModule {
  const { templates } = deps;
  const guard = deps.auth('templates:manage');
  const router = new Router();

  router.post('/v1/templates', ...guard, async (ctx) => {
    ctx.status = 201;
    ctx.body = await templates.create(applicationOf(ctx).id, parseWith(createTemplateSchema, ctx.request.body));
  });
  router.get('/v1/templates', ...guard, async (ctx) => {
    ctx.body = await templates.list(applicationOf(ctx).id, parseWith(templateListQuery, ctx.query, 'query'));
  });
  router.get('/v1/templates/:idOrName', ...guard, async (ctx) => {
    ctx.body = await templates.get(applicationOf(ctx).id, ctx.params.idOrName);
  });
  router.patch('/v1/templates/:idOrName', ...guard, async (ctx) => {
    ctx.body = await templates.update(applicationOf(ctx).id, ctx.params.idOrName, parseWith(updateTemplateSchema, ctx.request.body));
  });
  router.delete('/v1/templates/:idOrName', ...guard, async (ctx) => {
    await templates.remove(applicationOf(ctx).id, ctx.params.idOrName);
    ctx.status = 204;
  });
  router.post('/v1/templates/:idOrName/render', ...guard, async (ctx) => {
    const { data } = parseWith(renderTemplateSchema, ctx.request.body ?? {});
    ctx.body = await templates.render(applicationOf(ctx).id, ctx.params.idOrName, data);
  });

  return { router, openapi: templatesOpenApi };
}
