/** /v1/applications: the platform team's admin API (platform keys only). */
import Router from '@koa/router';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { requirePlatform, type Authenticator } from '../http/auth';
import type { ApiModule } from '../http/module';
import { parseWith } from '../http/validate';
import { jsonContent as json, problemResponses } from '../shared/openapi';
import type { RateLimit } from '../http/rate-limit';
import { applicationListSchema, applicationParams, applicationSchema, applicationUsageSchema, createApplicationSchema, updateApplicationSchema } from './schemas';
import type { ApplicationService } from './service';

const TAGS = ['Applications'];

export const applicationsOpenApi: ZodOpenApiPathsObject = {
  '/v1/applications': {
    post: {
      operationId: 'createApplication',
      summary: 'Create an application (platform keys)',
      tags: TAGS,
      requestBody: json(createApplicationSchema),
      responses: { '201': { description: 'Created', ...json(applicationSchema) }, ...problemResponses(400, 401, 403, 409, 415, 422) },
    },
    get: {
      operationId: 'listApplications',
      summary: 'List applications by name (platform keys)',
      tags: TAGS,
      responses: { '200': { description: 'Every application', ...json(applicationListSchema) }, ...problemResponses(401, 403) },
    },
  },
  '/v1/applications/{idOrName}': {
    get: {
      operationId: 'getApplication',
      summary: 'Get an application (platform keys)',
      tags: TAGS,
      requestParams: { path: applicationParams },
      responses: { '200': { description: 'The application', ...json(applicationSchema) }, ...problemResponses(401, 403, 404) },
    },
    patch: {
      operationId: 'updateApplication',
      summary: 'Change an application: name, description, settings (platform keys)',
      description: 'Settings set to null fall back to the installation configuration. Changes reach every api replica within API_KEY_CACHE_TTL_MS.',
      tags: TAGS,
      requestParams: { path: applicationParams },
      requestBody: json(updateApplicationSchema),
      responses: { '200': { description: 'The changed application', ...json(applicationSchema) }, ...problemResponses(400, 401, 403, 404, 409, 415, 422) },
    },
  },
  '/v1/applications/{idOrName}/usage': {
    get: {
      operationId: 'getApplicationUsage',
      summary: "An application's quota counters in their current windows (platform keys)",
      description:
        'Only the quotas the application has set are counted and listed. Windows are fixed: the clock minute and the UTC day (Redis\'s clock). ' +
        'A request past a quota is 429 problem+json of type quota-exceeded with Retry-After; while Redis is unreachable quotas are not enforced and this answers 503.',
      tags: TAGS,
      requestParams: { path: applicationParams },
      responses: { '200': { description: 'The counters', ...json(applicationUsageSchema) }, ...problemResponses(401, 403, 404) },
    },
  },
  '/v1/applications/{idOrName}/disable': {
    post: {
      operationId: 'disableApplication',
      summary: 'Disable an application: its keys stop working, its data stays (platform keys)',
      tags: TAGS,
      requestParams: { path: applicationParams },
      responses: { '200': { description: 'The disabled application', ...json(applicationSchema) }, ...problemResponses(401, 403, 404) },
    },
  },
  '/v1/applications/{idOrName}/enable': {
    post: {
      operationId: 'enableApplication',
      summary: 'Enable a disabled application again (platform keys)',
      tags: TAGS,
      requestParams: { path: applicationParams },
      responses: { '200': { description: 'The enabled application', ...json(applicationSchema) }, ...problemResponses(401, 403, 404) },
    },
  },
};

export function applicationRoutes(deps: {
  applications: ApplicationService;
  auth: Authenticator;
  /** Reads the quota counters (the rate limiter keeps them: app/http/quotas.ts). */
  quotas: Pick<RateLimit, 'usage'>;
}): ApiModule {
  const { applications, quotas } = deps;
  const platform = requirePlatform(deps.auth);
  const router = new Router();

  router.post('/v1/applications', platform, async (ctx) => {
    ctx.status = 201;
    ctx.body = await applications.create(parseWith(createApplicationSchema, ctx.request.body));
  });
  router.get('/v1/applications', platform, async (ctx) => {
    ctx.body = { data: await applications.list() };
  });
  router.get('/v1/applications/:idOrName', platform, async (ctx) => {
    ctx.body = await applications.get(ctx.params.idOrName);
  });
  router.patch('/v1/applications/:idOrName', platform, async (ctx) => {
    ctx.body = await applications.update(ctx.params.idOrName, parseWith(updateApplicationSchema, ctx.request.body));
  });
  router.get('/v1/applications/:idOrName/usage', platform, async (ctx) => {
    const application = await applications.get(ctx.params.idOrName);
    ctx.body = { id: application.id, name: application.name, quotas: await quotas.usage(application.id, application) };
  });
  router.post('/v1/applications/:idOrName/disable', platform, async (ctx) => {
    ctx.body = await applications.disable(ctx.params.idOrName);
  });
  router.post('/v1/applications/:idOrName/enable', platform, async (ctx) => {
    ctx.body = await applications.enable(ctx.params.idOrName);
  });

  return { router, openapi: applicationsOpenApi };
}
