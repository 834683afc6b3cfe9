/** /v1/event-types: the event-type catalog (webhooks/event-types.ts). */
import Router from '@koa/router';
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import type { RouteGuard } from '../http/auth';
import type { ApiModule } from '../http/module';
import { parseWith } from '../http/validate';
import { applicationOf } from '../shared/application';
import { jsonContent as json, problemResponses } from '../shared/openapi';
import type { EventTypeService } from './event-types';
import { eventType, LIMITS } from './schemas';

const jsonSchema = z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema (draft 07) of the payload; checked as a schema when stored (422 if it is not one)', example: { type: 'object', required: ['orderId'], properties: { orderId: { type: 'string' } } } });
const description = z.string().max(LIMITS.descriptionLength);
const deprecated = z.boolean().meta({ description: 'Still accepted on publish, answered with `Deprecation: true` and a `Warning` header' });

const createBody = z
  .strictObject({ name: eventType, description: description.optional(), schema: jsonSchema.optional(), deprecated: deprecated.optional() })
  .meta({ id: 'EventTypeCreate' });
const updateBody = z
  .strictObject({ description: description.nullable().optional(), schema: jsonSchema.nullable().optional().meta({ description: 'null removes the schema' }), deprecated: deprecated.optional() })
  .refine((b) => Object.keys(b).length > 0, 'give at least one field to change')
  .meta({ id: 'EventTypeUpdate' });

const eventTypeView = z
  .object({
    name: z.string(),
    description: z.string().nullable(),
    schema: z.record(z.string(), z.unknown()).nullable(),
    deprecated: z.boolean(),
    builtIn: z.boolean().meta({ description: 'Published by the service itself (email.*, webhook.*); cannot be created or changed' }),
    createdAt: z.string().datetime().nullable(),
    updatedAt: z.string().datetime().nullable(),
  })
  .meta({ id: 'EventType' });
const eventTypeList = z.object({ data: z.array(eventTypeView) });
const nameParams = z.object({ name: eventType });

function openApi(): ZodOpenApiPathsObject {
  const TAGS = ['Event types'];
  return {
    '/v1/event-types': {
      post: {
        operationId: 'createEventType',
        summary: 'Register an event type, optionally with a JSON Schema for its payload',
        description: 'When a type has a schema, POST /v1/events checks payloads against it (422 naming the path). Publishing a type that is not registered stays allowed.',
        tags: TAGS,
        requestBody: json(createBody),
        responses: { '201': { description: 'Created', ...json(eventTypeView) }, ...problemResponses(400, 401, 403, 409, 415, 422, 429) },
      },
      get: {
        operationId: 'listEventTypes',
        summary: "The built-in types (email.*, webhook.*) with their payload schemas, then the application's own, by name",
        tags: TAGS,
        responses: { '200': { description: 'Every event type', ...json(eventTypeList) }, ...problemResponses(401, 403, 429) },
      },
    },
    '/v1/event-types/{name}': {
      get: {
        operationId: 'getEventType',
        summary: 'Get an event type (built-in or your own)',
        tags: TAGS,
        requestParams: { path: nameParams },
        responses: { '200': { description: 'The event type', ...json(eventTypeView) }, ...problemResponses(401, 403, 404, 429) },
      },
      patch: {
        operationId: 'updateEventType',
        summary: 'Change the description, schema or deprecation of an event type',
        tags: TAGS,
        requestParams: { path: nameParams },
        requestBody: json(updateBody),
        responses: { '200': { description: 'The event type', ...json(eventTypeView) }, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429) },
      },
    },
  };
}

export function eventTypeRoutes(deps: { eventTypes: EventTypeService; auth: RouteGuard }): ApiModule {
  const { eventTypes, auth } = deps;
  // As the endpoint routes: the catalog is webhook configuration, read and written with webhooks:manage.
  const manage = auth('webhooks:manage');
  const router = new Router();

  router.post('/v1/event-types', ...manage, async (ctx) => {
    const created = await eventTypes.create(applicationOf(ctx).id, parseWith(createBody, ctx.request.body));
    ctx.status = 201;
    ctx.set('Location', `/v1/event-types/${encodeURIComponent(created.name)}`);
    ctx.body = created;
  });
  router.get('/v1/event-types', ...manage, async (ctx) => {
    ctx.body = await eventTypes.list(applicationOf(ctx).id);
  });
  router.get('/v1/event-types/:name', ...manage, async (ctx) => {
    ctx.body = await eventTypes.get(applicationOf(ctx).id, ctx.params.name);
  });
  router.patch('/v1/event-types/:name', ...manage, async (ctx) => {
    ctx.body = await eventTypes.update(applicationOf(ctx).id, ctx.params.name, parseWith(updateBody, ctx.request.body));
  });

  return { router, openapi: openApi() };
}
