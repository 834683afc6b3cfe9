/**
 * OpenAPI 3.1 for the public API, assembled from the domain modules' paths (zod schemas, the same
 * ones that validate requests), served at /openapi.json, with Swagger UI at /docs from the
 * swagger-ui-dist package's local files (works offline).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { createDocument, type ZodOpenApiPathsObject } from 'zod-openapi';
import { packageRoot } from '../paths';
import { APPLICATION_HEADER } from './auth';

/**
 * The operations behind `requirePlatform` (auth.ts): platform keys only, X-Application plays no
 * part there. Every other /v1 operation acts on an application and documents the header.
 */
export const PLATFORM_OPERATIONS: ReadonlySet<string> = new Set([
  'createApplication', 'listApplications', 'getApplication', 'getApplicationUsage', 'updateApplication', 'disableApplication', 'enableApplication',
  'createApiKey', 'revokeApiKey',
]);

const APPLICATION_PARAMETER = {
  name: APPLICATION_HEADER,
  in: 'header' as const,
  required: false,
  description:
    'The application the request acts on: its name or id. Required with a platform key (scope `platform:admin`): without it `400`, ' +
    'an unknown application `404`, a disabled one `403` (on `GET /v1/api-keys` it is optional: without it, the keys of every application). ' +
    "With an application's key it may be left out (the key's own application); naming any other application is `403`, whether or not it exists.",
  schema: { type: 'string' as const, maxLength: 255, examples: ['billing'] },
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** Adds `$ref: XApplication` to every /v1 operation that acts on an application. */
function withApplicationHeader(doc: ReturnType<typeof createDocument>): ReturnType<typeof createDocument> {
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    if (!path.startsWith('/v1/')) continue;
    for (const method of METHODS) {
      const op = (item as Record<string, { operationId?: string; parameters?: unknown[] } | undefined>)[method];
      if (!op || PLATFORM_OPERATIONS.has(op.operationId ?? '')) continue;
      op.parameters = [{ $ref: '#/components/parameters/XApplication' }, ...(op.parameters ?? [])];
    }
  }
  doc.components = { ...doc.components, parameters: { ...doc.components?.parameters, XApplication: APPLICATION_PARAMETER } };
  return doc;
}

/** Modules may describe different methods of one path (GET /v1/events beside POST): merged per path. */
function mergePaths(paths: ZodOpenApiPathsObject[]): ZodOpenApiPathsObject {
  const merged: ZodOpenApiPathsObject = {};
  for (const p of paths) for (const [path, item] of Object.entries(p)) merged[path] = { ...merged[path], ...item };
  return merged;
}

export function buildOpenApiDocument(paths: ZodOpenApiPathsObject[]) {
  const version = (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return withApplicationHeader(createDocument({
    openapi: '3.1.0',
    info: {
      title: 'EaseEmail Notifications API',
      version,
      description:
        'Transactional email and signed webhooks. Authenticate with `Authorization: Bearer <api key>`. ' +
        'Errors are RFC 9457 application/problem+json.',
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'API key (ee_...)' } } },
    paths: mergePaths(paths),
  }));
}

const SWAGGER_FILES = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png']);

const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>EaseEmail API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>`;

// A separate script file (not inline) so the page works under a strict Content-Security-Policy.
const DOCS_INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });`;

export function openApiRouter(document: object): Router {
  const router = new Router();
  const json = JSON.stringify(document);
  const swaggerDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  router.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = json;
  });
  router.get('/docs', (ctx) => {
    ctx.type = 'html';
    ctx.body = DOCS_PAGE;
  });
  router.get('/docs/init.js', (ctx) => {
    ctx.type = 'application/javascript';
    ctx.body = DOCS_INIT;
  });
  router.get('/docs/:file', (ctx) => {
    const file = ctx.params.file;
    if (!SWAGGER_FILES.has(file)) return; // falls through to the 404 problem
    ctx.type = path.extname(file);
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = readFileSync(path.join(swaggerDir, file));
  });
  return router;
}
