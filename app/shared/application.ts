/**
 * The application (tenant) a request acts on, and the convention every domain follows for per-application data (README, "Applications: rules
 * for new tables and routes"):
 *
 * 1. A table gets `applicationId String @db.Uuid` with its relation to Application, and its
 *    indexes start with it (`@@index([applicationId, createdAt])`, `@@unique([applicationId, name])`).
 * 2. A route handler takes the caller's application with `applicationOf(ctx)` (set by the auth
 *    middleware; it throws if the route has none) and passes its `id` to the service.
 * 3. A service method takes `applicationId: string` as its FIRST argument and puts it in the
 *    query itself: `where: { applicationId, id }` (never load by id, then compare), raw SQL
 *    `WHERE "applicationId" = $1 AND ...`. A row of another application is then simply not
 *    found, which is the same 404 as an id that does not exist.
 * 4. Workers carry the application id in what they read (the row has it) and log it:
 *    `log.child({ applicationId })`.
 */
import type { Context } from 'koa';

/** An application's settings; null means "the installation's setting" (config). */
export interface ApplicationSettings {
  rateLimitPerSecond: number | null;
  rateLimitBurst: number | null;
  defaultFrom: string | null;
  /** Empty: any sender domain. */
  allowedSenderDomains: string[];
  retentionDays: number | null;
  /** Quotas (app/http/quotas.ts): emails accepted / events published per UTC minute and UTC day; null = no quota. */
  emailQuotaPerMinute: number | null;
  emailQuotaPerDay: number | null;
  eventQuotaPerMinute: number | null;
  eventQuotaPerDay: number | null;
}

/** The application a request acts on (ctx.state.application). */
export interface ApplicationContext {
  id: string;
  name: string;
  settings: ApplicationSettings;
}

/** Finds the application a request names (X-Application: name or id); cached by the applications service. */
export interface ApplicationLookup {
  forRequest(idOrName: string): Promise<{ application: ApplicationContext; disabled: boolean } | undefined>;
}

/** The caller's application; throws when the route was not mounted behind application auth. */
export function applicationOf(ctx: Context): ApplicationContext {
  const application = ctx.state.application as ApplicationContext | undefined;
  if (!application) throw new Error(`route ${ctx.method} ${ctx.path} has no application: mount it behind the auth middleware's requireScope`);
  return application;
}
