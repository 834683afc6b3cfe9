/**
 * The applications domain's public face. What a request's application looks like, and how a
 * route and a service receive it, is in app/shared/application.ts (every domain uses it). The api
 * root wires the routes (./routes.ts) directly.
 */
export { DEFAULT_APPLICATION_ID, DEFAULT_APPLICATION_NAME } from './default';
export { createApplicationService, toApplicationContext, type ApplicationService } from './service';
export { createApplicationSchema } from './schemas';
