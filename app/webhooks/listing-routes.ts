/** GET /v1/events, /v1/webhook-endpoints/{id}/deliveries and /stats, /v1/webhook-deliveries/{id}. */
import Router from '@koa/router';
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { jsonContent as json, problemResponses } from '../shared/openapi';
import type { RouteGuard } from '../http/auth';
import type { ApiModule } from '../http/module';
import { parseWith } from '../http/validate';
import { deliveryDetail, deliveryList, deliveryListQuery, endpointStats, eventList, eventListQuery } from './listing-schemas';
import type { WebhookListings } from './listings';
import { idParam } from './routes';
import { applicationOf } from '../shared/application';

const idParams = z.object({ id: z.uuid() });

function openApi(): ZodOpenApiPathsObject {
  return {
    '/v1/events': {
      get: {
        operationId: 'listEvents',
        summary: 'List events, newest first, by type and time window',
        description: 'Cursor pagination: pass nextCursor as cursor. A bad filter or cursor is a 422.',
        tags: ['Events'],
        requestParams: { query: eventListQuery },
        responses: { '200': { description: 'A page of events', ...json(eventList) }, ...problemResponses(401, 403, 422, 429) },
      },
    },
    '/v1/webhook-endpoints/{id}/deliveries': {
      get: {
        operationId: 'listWebhookEndpointDeliveries',
        summary: "List an endpoint's deliveries, newest first, by status and time window",
        tags: ['Webhook endpoints'],
        requestParams: { path: idParams, query: deliveryListQuery },
        responses: { '200': { description: 'A page of deliveries', ...json(deliveryList) }, ...problemResponses(401, 403, 404, 422, 429) },
      },
    },
    '/v1/webhook-endpoints/{id}/stats': {
      get: {
        operationId: 'getWebhookEndpointStats',
        summary: 'Delivery counts for the last 24 h and 7 d, last success, failing since, attempt duration p50/p95',
        tags: ['Webhook endpoints'],
        requestParams: { path: idParams },
        responses: { '200': { description: 'The stats', ...json(endpointStats) }, ...problemResponses(401, 403, 404, 429) },
      },
    },
    '/v1/webhook-deliveries/{id}': {
      get: {
        operationId: 'getWebhookDelivery',
        summary: 'Get a delivery with every attempt',
        tags: ['Events'],
        requestParams: { path: idParams },
        responses: { '200': { description: 'The delivery', ...json(deliveryDetail) }, ...problemResponses(401, 403, 404, 429) },
      },
    },
  };
}

export function webhookListingRoutes(deps: { listings: WebhookListings; auth: RouteGuard }): ApiModule {
  const { listings, auth } = deps;
  const manage = auth('webhooks:manage');
  const publish = auth('events:publish');
  const router = new Router();

  router.get('/v1/events', ...publish, async (ctx) => {
    ctx.body = await listings.listEvents(applicationOf(ctx).id, parseWith(eventListQuery, ctx.query, 'query'));
  });
  router.get('/v1/webhook-endpoints/:id/deliveries', ...manage, async (ctx) => {
    const id = idParam(ctx.params.id, 'webhook endpoint');
    ctx.body = await listings.listDeliveries(applicationOf(ctx).id, id, parseWith(deliveryListQuery, ctx.query, 'query'));
  });
  router.get('/v1/webhook-endpoints/:id/stats', ...manage, async (ctx) => {
    ctx.body = await listings.endpointStats(applicationOf(ctx).id, idParam(ctx.params.id, 'webhook endpoint'));
  });
  router.get('/v1/webhook-deliveries/:id', ...manage, async (ctx) => {
    ctx.body = await listings.getDelivery(applicationOf(ctx).id, idParam(ctx.params.id, 'webhook delivery'));
  });

  return { router, openapi: openApi() };
}
