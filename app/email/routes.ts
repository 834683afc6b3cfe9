/** /v1/emails: send one or a batch, read, list, cancel. */
import Router from '@koa/router';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import type { RouteGuard } from '../http/auth';
import type { Idempotency } from '../http/idempotency';
import type { ApiModule } from '../http/module';
import { batchUnits, ONE_UNIT } from '../http/quotas';
import { parseWith } from '../http/validate';
import { applicationOf } from '../shared/application';
import { rowIdOr404 } from '../shared/ids';
import { idempotencyKeyHeader, jsonContent as json, problemResponses, withQuotaHeaders } from '../shared/openapi';
import {
  acceptedBatchSchema,
  acceptedEmailSchema,
  cancelledEmailSchema,
  emailListQuery,
  emailListSchema,
  emailParams,
  emailSchema,
  sendBatchSchema,
  sendEmailSchema,
} from './schemas';
import { EMAIL_LIMITS } from './limits';
import type { EmailService } from './service';

const TAGS = ['Emails'];

export const emailsOpenApi: ZodOpenApiPathsObject = {
  '/v1/emails': {
    post: {
      operationId: 'sendEmail',
      summary: 'Send an email',
      description: 'Accepted once stored; delivery is asynchronous (follow it with GET /v1/emails/{id} or the email.* webhooks).',
      tags: TAGS,
      requestParams: { header: idempotencyKeyHeader },
      requestBody: json(sendEmailSchema),
      responses: withQuotaHeaders({ '202': { description: 'Accepted', ...json(acceptedEmailSchema) }, ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429) }),
    },
    get: {
      operationId: 'listEmails',
      summary: 'List emails, newest first',
      tags: TAGS,
      requestParams: { query: emailListQuery },
      responses: { '200': { description: 'A page of emails', ...json(emailListSchema) }, ...problemResponses(401, 403, 422, 429) },
    },
  },
  '/v1/emails/batch': {
    post: {
      operationId: 'sendEmailBatch',
      summary: 'Send up to 100 emails in one request (all or nothing)',
      tags: TAGS,
      requestParams: { header: idempotencyKeyHeader },
      requestBody: json(sendBatchSchema),
      responses: withQuotaHeaders({ '202': { description: 'All accepted, in request order', ...json(acceptedBatchSchema) }, ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429) }),
    },
  },
  '/v1/emails/{id}': {
    get: {
      operationId: 'getEmail',
      summary: 'Get an email with its delivery attempts',
      tags: TAGS,
      requestParams: { path: emailParams },
      responses: { '200': { description: 'The email', ...json(emailSchema) }, ...problemResponses(401, 403, 404, 429) },
    },
  },
  '/v1/emails/{id}/cancel': {
    post: {
      operationId: 'cancelEmail',
      summary: 'Cancel a queued or scheduled email',
      tags: TAGS,
      requestParams: { path: emailParams },
      responses: {
        '200': { description: 'Cancelled', ...json(cancelledEmailSchema) },
        ...problemResponses(401, 403, 404, 429),
        '409': problemResponses(409)['409'],
      },
    },
  },
};

const emailId = (value: string) => rowIdOr404(value, (quoted) => `no email ${quoted}`);

export function emailRoutes(deps: { emails: EmailService; idempotency: Pick<Idempotency, 'respond'>; auth: RouteGuard }): ApiModule {
  const { emails, idempotency, auth } = deps;
  const send = auth('emails:send');
  // The accept routes count against the application's email quotas: one per email.
  const sendOne = auth('emails:send', { kind: 'emails', units: ONE_UNIT });
  const sendBatch = auth('emails:send', { kind: 'emails', units: batchUnits(EMAIL_LIMITS.batch) });
  const read = auth('emails:read');
  const router = new Router();

  router.post('/v1/emails', ...sendOne, async (ctx) => {
    const input = parseWith(sendEmailSchema, ctx.request.body);
    await idempotency.respond(ctx, 'POST /v1/emails', (claim) => emails.accept(input, { application: applicationOf(ctx), apiKeyId: ctx.state.apiKey.id, idempotency: claim }));
  });
  router.post('/v1/emails/batch', ...sendBatch, async (ctx) => {
    const inputs = parseWith(sendBatchSchema, ctx.request.body);
    await idempotency.respond(ctx, 'POST /v1/emails/batch', (claim) => emails.acceptBatch(inputs, { application: applicationOf(ctx), apiKeyId: ctx.state.apiKey.id, idempotency: claim }));
  });
  router.get('/v1/emails', ...read, async (ctx) => {
    ctx.body = await emails.list(applicationOf(ctx).id, parseWith(emailListQuery, ctx.query, 'query'));
  });
  router.get('/v1/emails/:id', ...read, async (ctx) => {
    ctx.body = await emails.get(applicationOf(ctx).id, emailId(ctx.params.id));
  });
  router.post('/v1/emails/:id/cancel', ...send, async (ctx) => {
    ctx.body = await emails.cancel(applicationOf(ctx).id, emailId(ctx.params.id), ctx.state.apiKey.id);
  });

  return { router, openapi: emailsOpenApi };
}
