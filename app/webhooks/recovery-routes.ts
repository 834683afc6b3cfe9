/** POST /v1/webhook-endpoints/{id}/recover and GET /v1/webhook-endpoints/{id}/recoveries/{recoveryId}. */
import Router from '@koa/router';
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import type { RouteGuard } from '../http/auth';
import type { ApiModule } from '../http/module';
import { parseWith } from '../http/validate';
import { applicationOf } from '../shared/application';
import { jsonContent as json, problemResponses } from '../shared/openapi';
import { instant } from './listing-schemas';
import type { RecoveryService } from './recoveries';
import { idParam } from './routes';

const recoverBody = z
  .strictObject({
    since: instant.meta({ description: 'Re-send failed deliveries created at or after this time' }),
    until: instant.optional().meta({ description: 'and before this time (default: now)' }),
  })
  .meta({ id: 'WebhookRecoverRequest' });

const recoveryView = z
  .object({
    id: z.uuid(),
    endpointId: z.uuid(),
    since: z.string().datetime(),
    until: z.string().datetime(),
    status: z.enum(['queued', 'running', 'done', 'failed']),
    total: z.number().int().nullable().meta({ description: 'Failed deliveries in the window when the task started (null before)' }),
    queued: z.number().int().nullable().meta({ description: 'Still to re-send' }),
    done: z.number().int().meta({ description: 'Re-sent and answered 2xx' }),
    failed: z.number().int().meta({ description: 'Re-sent and failed again' }),
    error: z.string().nullable().meta({ description: 'Why a failed task stopped' }),
    createdAt: z.string().datetime(),
    finishedAt: z.string().datetime().nullable(),
  })
  .meta({ id: 'WebhookRecovery' });

const endpointParams = z.object({ id: z.uuid() });
const recoveryParams = z.object({ id: z.uuid(), recoveryId: z.uuid() });

function openApi(): ZodOpenApiPathsObject {
  return {
    '/v1/webhook-endpoints/{id}/recover': {
      post: {
        operationId: 'recoverWebhookEndpoint',
        summary: "Re-send the endpoint's failed deliveries of a time window, in event order, as a background task",
        description:
          'Answers at once with the task; follow it at Location. Deliveries that used up their schedule or were failed by disabling are sent once more, ' +
          "within the endpoint's rate limit. 409 when the endpoint is disabled (enable it first) or a recovery of it is already queued or running.",
        tags: ['Webhook endpoints'],
        requestParams: { path: endpointParams },
        requestBody: json(recoverBody),
        responses: { '202': { description: 'The task, queued', ...json(recoveryView) }, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429) },
      },
    },
    '/v1/webhook-endpoints/{id}/recoveries/{recoveryId}': {
      get: {
        operationId: 'getWebhookRecovery',
        summary: 'A recovery task: its status and counts (queued, done, failed)',
        tags: ['Webhook endpoints'],
        requestParams: { path: recoveryParams },
        responses: { '200': { description: 'The task', ...json(recoveryView) }, ...problemResponses(401, 403, 404, 429) },
      },
    },
  };
}

export function webhookRecoveryRoutes(deps: { recoveries: RecoveryService; auth: RouteGuard }): ApiModule {
  const { recoveries, auth } = deps;
  const manage = auth('webhooks:manage');
  const router = new Router();

  router.post('/v1/webhook-endpoints/:id/recover', ...manage, async (ctx) => {
    const endpointId = idParam(ctx.params.id, 'webhook endpoint');
    const task = await recoveries.start(applicationOf(ctx).id, endpointId, parseWith(recoverBody, ctx.request.body));
    ctx.status = 202;
    ctx.set('Location', `/v1/webhook-endpoints/${endpointId}/recoveries/${task.id}`);
    ctx.body = task;
  });
  router.get('/v1/webhook-endpoints/:id/recoveries/:recoveryId', ...manage, async (ctx) => {
    const endpointId = idParam(ctx.params.id, 'webhook endpoint');
    ctx.body = await recoveries.get(applicationOf(ctx).id, endpointId, idParam(ctx.params.recoveryId, 'recovery'));
  });

  return { router, openapi: openApi() };
}
