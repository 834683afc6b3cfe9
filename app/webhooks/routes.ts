/** /v1/webhook-endpoints, /v1/events and /v1/webhook-deliveries. */
import Router from '@koa/router';
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import type { Prisma } from '../db/client';
import type { RouteGuard } from '../http/auth';
import type { Idempotency } from '../http/idempotency';
import type { ApiModule } from '../http/module';
import { ONE_UNIT } from '../http/quotas';
import { parseWith } from '../http/validate';
import { applicationOf } from '../shared/application';
import { rowIdOr404 } from '../shared/ids';
import { IDEMPOTENCY_HEADER, idempotencyKeyHeader, jsonContent as json, problemResponses, withQuotaHeaders } from '../shared/openapi';
import type { EndpointService } from './endpoints';
import type { EventService } from './event-service';
import type { EventTypeService } from './event-types';
import { endpointSchemas, endpointView, eventView, listQuery, publishEventSchema, rotateSecretSchema, secretView } from './schemas';

/** Without it, POST /v1/events takes the one-statement path (event-service.ts publishChecked). */
const IDEMPOTENCY_KEY = IDEMPOTENCY_HEADER.toLowerCase();

const idParams = z.object({ id: z.uuid() });
const endpointWithSecret = endpointView
  .extend({ secret: z.string().optional().meta({ description: 'hmac-sha256 endpoints only: the shared secret (whsec_...). An ed25519 endpoint answers its publicKey instead; its private key is never shown' }) })
  .meta({ id: 'WebhookEndpointCreated' });
const endpointList = z.object({ data: z.array(endpointView), nextCursor: z.uuid().nullable() });
const publishedEvent = z.object({ id: z.uuid(), type: z.string(), deliveries: z.number().int().meta({ description: 'endpoints it fans out to' }) });
const retried = z.object({ id: z.uuid(), status: z.literal('pending') });

function openApi(): ZodOpenApiPathsObject {
  const { create, update } = endpointSchemas({ allowPrivateNetworks: false });
  const ENDPOINTS = ['Webhook endpoints'];
  const EVENTS = ['Events'];
  return {
    '/v1/webhook-endpoints': {
      post: {
        operationId: 'createWebhookEndpoint',
        summary: 'Create a webhook endpoint',
        description:
          'The answer carries the signing secret (whsec_...) of an hmac-sha256 endpoint, or the public key (whpk_...) of an ed25519 one (`signatureScheme`). ' +
          'Literal private, loopback and link-local addresses are refused.',
        tags: ENDPOINTS,
        requestBody: json(create),
        responses: { '201': { description: 'Created', ...json(endpointWithSecret) }, ...problemResponses(400, 401, 403, 415, 422, 429) },
      },
      get: {
        operationId: 'listWebhookEndpoints',
        summary: 'List webhook endpoints, newest first',
        tags: ENDPOINTS,
        requestParams: { query: listQuery },
        responses: { '200': { description: 'A page of endpoints', ...json(endpointList) }, ...problemResponses(401, 403, 422, 429) },
      },
    },
    '/v1/webhook-endpoints/{id}': {
      get: {
        operationId: 'getWebhookEndpoint',
        summary: 'Get a webhook endpoint (with why it was disabled, if it was)',
        tags: ENDPOINTS,
        requestParams: { path: idParams },
        responses: { '200': { description: 'The endpoint', ...json(endpointView) }, ...problemResponses(401, 403, 404, 429) },
      },
      patch: {
        operationId: 'updateWebhookEndpoint',
        summary: 'Change a webhook endpoint; `enabled: true` re-enables a disabled one',
        tags: ENDPOINTS,
        requestParams: { path: idParams },
        requestBody: json(update),
        responses: { '200': { description: 'The endpoint', ...json(endpointView) }, ...problemResponses(400, 401, 403, 404, 415, 422, 429) },
      },
      delete: {
        operationId: 'deleteWebhookEndpoint',
        summary: 'Delete a webhook endpoint and its delivery history',
        tags: ENDPOINTS,
        requestParams: { path: idParams },
        responses: { '204': { description: 'Deleted' }, ...problemResponses(401, 403, 404, 429) },
      },
    },
    '/v1/webhook-endpoints/{id}/secret': {
      get: {
        operationId: 'getWebhookEndpointSecret',
        summary: 'Get the signing secret (hmac-sha256) or the public key (ed25519)',
        tags: ENDPOINTS,
        requestParams: { path: idParams },
        responses: { '200': { description: 'The secret', ...json(secretView) }, ...problemResponses(401, 403, 404, 409, 429) },
      },
    },
    '/v1/webhook-endpoints/{id}/rotate-secret': {
      post: {
        operationId: 'rotateWebhookEndpointSecret',
        summary: 'Rotate the signing secret, optionally to another scheme',
        description:
          'The new secret (or ed25519 key pair) signs from now on; the previous one keeps signing alongside it for 24 h, in its own scheme ' +
          '(a second `v1` or `v1a` signature). The body is optional: `{"signatureScheme": "ed25519"}` switches an HMAC endpoint to ed25519, and back.',
        tags: ENDPOINTS,
        requestParams: { path: idParams },
        requestBody: { required: false, ...json(rotateSecretSchema) },
        responses: { '200': { description: 'The new secret, or the new public key', ...json(secretView) }, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429) },
      },
    },
    '/v1/events': {
      post: {
        operationId: 'publishEvent',
        summary: 'Publish an event to every enabled endpoint subscribed to its type',
        description:
          'Each endpoint gets a signed POST (Standard Webhooks), retried per the schedule until it answers 2xx. When the type is registered with a schema (/v1/event-types) ' +
          'the payload must match it (422 naming the path); a deprecated type is still published, answered with `Deprecation: true` and a `Warning` header. ' +
          'A type that is not registered is published as it is.',
        tags: EVENTS,
        requestParams: { header: idempotencyKeyHeader },
        requestBody: json(publishEventSchema),
        responses: withQuotaHeaders({ '202': { description: 'Accepted', ...json(publishedEvent) }, ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429) }),
      },
    },
    '/v1/events/{id}': {
      get: {
        operationId: 'getEvent',
        summary: 'Get an event with every delivery and attempt',
        tags: EVENTS,
        requestParams: { path: idParams },
        responses: { '200': { description: 'The event', ...json(eventView) }, ...problemResponses(401, 403, 404, 429) },
      },
    },
    '/v1/webhook-deliveries/{id}/retry': {
      post: {
        operationId: 'retryWebhookDelivery',
        summary: 'Attempt a delivery again now (also a failed or delivered one)',
        tags: EVENTS,
        requestParams: { path: idParams },
        responses: { '202': { description: 'Due now', ...json(retried) }, ...problemResponses(401, 403, 404, 409, 429) },
      },
    },
  };
}

export const idParam = (value: string, what: string) => rowIdOr404(value, (quoted) => `no ${what} with id ${quoted}`);

export function webhookRoutes(deps: {
  endpoints: EndpointService;
  events: EventService;
  /** Payload schemas and deprecation of the application's event types, checked on publish. */
  eventTypes: Pick<EventTypeService, 'checkPayload' | 'checkRegistered'>;
  idempotency: Pick<Idempotency, 'respond'>;
  auth: RouteGuard;
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: whether literal private addresses are accepted as URLs. */
  allowPrivateNetworks: boolean;
}): ApiModule {
  const { endpoints, events, eventTypes, idempotency, auth } = deps;
  const schemas = endpointSchemas({ allowPrivateNetworks: deps.allowPrivateNetworks });
  const manage = auth('webhooks:manage');
  const publish = auth('events:publish');
  // Publishing counts against the application's event quotas: one per event, whatever its fan-out.
  const publishCounted = auth('events:publish', { kind: 'events', units: ONE_UNIT });
  const router = new Router();

  router.post('/v1/webhook-endpoints', ...manage, async (ctx) => {
    const created = await endpoints.create(applicationOf(ctx).id, parseWith(schemas.create, ctx.request.body));
    ctx.status = 201;
    ctx.set('Location', `/v1/webhook-endpoints/${created.id}`);
    ctx.body = created;
  });
  router.get('/v1/webhook-endpoints', ...manage, async (ctx) => {
    ctx.body = await endpoints.list(applicationOf(ctx).id, parseWith(listQuery, ctx.query, 'query'));
  });
  router.get('/v1/webhook-endpoints/:id', ...manage, async (ctx) => {
    ctx.body = await endpoints.get(applicationOf(ctx).id, idParam(ctx.params.id, 'webhook endpoint'));
  });
  router.patch('/v1/webhook-endpoints/:id', ...manage, async (ctx) => {
    const id = idParam(ctx.params.id, 'webhook endpoint');
    ctx.body = await endpoints.update(applicationOf(ctx).id, id, parseWith(schemas.update, ctx.request.body));
  });
  router.delete('/v1/webhook-endpoints/:id', ...manage, async (ctx) => {
    await endpoints.remove(applicationOf(ctx).id, idParam(ctx.params.id, 'webhook endpoint'));
    ctx.status = 204;
  });
  router.get('/v1/webhook-endpoints/:id/secret', ...manage, async (ctx) => {
    ctx.body = await endpoints.getSecret(applicationOf(ctx).id, idParam(ctx.params.id, 'webhook endpoint'));
  });
  router.post('/v1/webhook-endpoints/:id/rotate-secret', ...manage, async (ctx) => {
    const id = idParam(ctx.params.id, 'webhook endpoint');
    ctx.body = await endpoints.rotateSecret(applicationOf(ctx).id, id, parseWith(rotateSecretSchema, ctx.request.body));
  });

  router.post('/v1/events', ...publishCounted, async (ctx) => {
    const input = parseWith(publishEventSchema, ctx.request.body);
    const applicationId = applicationOf(ctx).id;
    const markDeprecated = () => {
      // RFC 9745's Deprecation header, and the reason in words (Warning, code 299 "miscellaneous persistent warning").
      ctx.set('Deprecation', 'true');
      ctx.set('Warning', `299 - "event type ${input.type} is deprecated"`);
    };
    if (ctx.headers[IDEMPOTENCY_KEY] === undefined) {
      // No key: the type's registration is read by the recording statement (event-service.ts).
      const { published, deprecated } = await events.publishChecked(
        { applicationId, type: input.type, payload: input.payload as Prisma.InputJsonObject, apiKeyId: ctx.state.apiKey.id },
        (registered) => eventTypes.checkRegistered(registered, input.type, input.payload),
      );
      if (deprecated) markDeprecated();
      ctx.status = 202;
      ctx.body = { ...published };
      return;
    }
    const { deprecated } = await eventTypes.checkPayload(applicationId, input.type, input.payload);
    if (deprecated) markDeprecated();
    await idempotency.respond(ctx, 'POST /v1/events', async (claim) => {
      const body = await events.publish({ applicationId: applicationOf(ctx).id, type: input.type, payload: input.payload as Prisma.InputJsonObject, apiKeyId: ctx.state.apiKey.id }, { idempotency: claim });
      return { status: 202, body: { ...body } };
    });
  });
  router.get('/v1/events/:id', ...publish, async (ctx) => {
    ctx.body = await events.get(applicationOf(ctx).id, idParam(ctx.params.id, 'event'));
  });
  router.post('/v1/webhook-deliveries/:id/retry', ...manage, async (ctx) => {
    ctx.status = 202;
    ctx.body = await events.retryDelivery(applicationOf(ctx).id, idParam(ctx.params.id, 'webhook delivery'));
  });

  return { router, openapi: openApi() };
}
