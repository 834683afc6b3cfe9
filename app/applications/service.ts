/**
 * Applications (tenants): created, listed, changed and disabled by platform keys (and the CLI).
 * Rows are never deleted: every resource row references its application, and a disabled one
 * keeps its data while its keys stop working.
 *
 * `forRequest` is on the auth path: it is cached in-process like API key look-ups, so a change
 * (settings, disabling) reaches every api replica within `cacheTtlMs`.
 */
import type { Db } from '../db/client';
import { ConflictError, NotFoundError, ValidationError, type FieldError } from '../errors';
import type { Application } from '../generated/prisma/client';
import { looksLikeUuid } from '../shared/ids';
import type { ApplicationContext, ApplicationLookup, ApplicationSettings } from '../shared/application';
import { type ApplicationView, type CreateApplicationInput, type UpdateApplicationInput } from './schemas';

/** Names and ids of live applications: tens. The bound only stops a client naming junk from growing it. */
const CACHE_MAX_ENTRIES = 1_000;

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === 'P2002';
}

/** The settings columns of a row: what the API shows and what requests act under. */
function settingsOf(row: Application): ApplicationSettings {
  return {
    rateLimitPerSecond: row.rateLimitPerSecond,
    rateLimitBurst: row.rateLimitBurst,
    defaultFrom: row.defaultFrom,
    allowedSenderDomains: row.allowedSenderDomains,
    retentionDays: row.retentionDays,
    emailQuotaPerMinute: row.emailQuotaPerMinute,
    emailQuotaPerDay: row.emailQuotaPerDay,
    eventQuotaPerMinute: row.eventQuotaPerMinute,
    eventQuotaPerDay: row.eventQuotaPerDay,
  };
}

export function toApplicationView(row: Application): ApplicationView {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    ...settingsOf(row),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    disabledAt: row.disabledAt ? row.disabledAt.toISOString() : null,
  };
}

/** What a request needs of its application (auth puts it on ctx.state.application). */
export function toApplicationContext(row: Application): ApplicationContext {
  return {
    id: row.id,
    name: row.name,
    settings: settingsOf(row),
  };
}

const QUOTA_FIELDS = ['emailQuotaPerMinute', 'emailQuotaPerDay', 'eventQuotaPerMinute', 'eventQuotaPerDay'] as const;
type Quotas = Pick<Application, (typeof QUOTA_FIELDS)[number]>;

/** The quotas that `input` sets, with every field it leaves out (undefined) as in `base` (none: null). */
function quotasFrom(input: Partial<Record<keyof Quotas, number | null>>, base?: Quotas): Quotas {
  return Object.fromEntries(QUOTA_FIELDS.map((f) => [f, input[f] !== undefined ? input[f] : (base?.[f] ?? null)])) as Quotas;
}

/** A per-minute quota above its per-day one is a typo (it could never be reached): refused, naming the field. */
function checkQuotas(q: Quotas): void {
  const errors: FieldError[] = [];
  for (const [minute, day] of [['emailQuotaPerMinute', 'emailQuotaPerDay'], ['eventQuotaPerMinute', 'eventQuotaPerDay']] as const) {
    const perMinute = q[minute];
    const perDay = q[day];
    if (perMinute !== null && perDay !== null && perMinute > perDay) errors.push({ path: `/${minute}`, message: `must not exceed ${day} (${perDay})` });
  }
  if (errors.length > 0) throw new ValidationError(`invalid settings: ${errors.map((e) => `${e.path.slice(1)} ${e.message}`).join('; ')}`, errors);
}

type ResolvedApplication = Awaited<ReturnType<ApplicationLookup['forRequest']>>;

export function createApplicationService(deps: { db: Db; cacheTtlMs?: number; now?: () => number }) {
  const { db } = deps;
  const ttl = deps.cacheTtlMs ?? 5_000;
  const now = deps.now ?? Date.now;
  const cache = new Map<string, { value: ResolvedApplication; expires: number }>();

  function whereIdOrName(idOrName: string) {
    return looksLikeUuid(idOrName) ? { id: idOrName.toLowerCase() } : { name: idOrName };
  }

  async function findRow(idOrName: string): Promise<Application> {
    const row = await db.application.findUnique({ where: whereIdOrName(idOrName) });
    if (!row) throw new NotFoundError(`no application ${JSON.stringify(idOrName.slice(0, 80))}`);
    return row;
  }

  async function create(input: CreateApplicationInput): Promise<ApplicationView> {
    const quotas = quotasFrom(input);
    checkQuotas(quotas);
    try {
      const row = await db.application.create({
        data: {
          ...quotas,
          name: input.name,
          description: input.description ?? null,
          rateLimitPerSecond: input.rateLimitPerSecond ?? null,
          rateLimitBurst: input.rateLimitBurst ?? null,
          defaultFrom: input.defaultFrom ?? null,
          allowedSenderDomains: input.allowedSenderDomains ?? [],
          retentionDays: input.retentionDays ?? null,
        },
      });
      return toApplicationView(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`an application named "${input.name}" already exists`);
      throw err;
    }
  }

  /** Every application, by name (there are tens, not thousands: no pagination). */
  async function list(): Promise<ApplicationView[]> {
    return (await db.application.findMany({ orderBy: { name: 'asc' } })).map(toApplicationView);
  }

  async function get(idOrName: string): Promise<ApplicationView> {
    return toApplicationView(await findRow(idOrName));
  }

  async function update(idOrName: string, patch: UpdateApplicationInput): Promise<ApplicationView> {
    const current = await findRow(idOrName);
    checkQuotas(quotasFrom(patch, current));
    try {
      const row = await db.application.update({ where: { id: current.id }, data: { ...patch, updatedAt: new Date(now()) } });
      cache.clear();
      return toApplicationView(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`an application named "${patch.name}" already exists`);
      throw err;
    }
  }

  /** Its keys stop working (within the cache TTL); its data stays. Idempotent. */
  async function setDisabled(idOrName: string, disabled: boolean): Promise<ApplicationView> {
    const current = await findRow(idOrName);
    const at = new Date(now());
    const row = await db.application.update({
      where: { id: current.id },
      data: { disabledAt: disabled ? (current.disabledAt ?? at) : null, updatedAt: at },
    });
    cache.clear();
    return toApplicationView(row);
  }

  /** The application a request names (X-Application) or its key belongs to; cached. */
  async function forRequest(idOrName: string): Promise<ResolvedApplication> {
    const t = now();
    const hit = cache.get(idOrName);
    if (hit && hit.expires > t) return hit.value;
    const row = await db.application.findUnique({ where: whereIdOrName(idOrName) });
    const value: ResolvedApplication = row ? { application: toApplicationContext(row), disabled: row.disabledAt !== null } : undefined;
    if (cache.size >= CACHE_MAX_ENTRIES) cache.clear();
    if (ttl > 0) cache.set(idOrName, { value, expires: t + ttl });
    return value;
  }

  return {
    create,
    list,
    get,
    update,
    disable: (idOrName: string) => setDisabled(idOrName, true),
    enable: (idOrName: string) => setDisabled(idOrName, false),
    forRequest,
  };
}

export type ApplicationService = ReturnType<typeof createApplicationService>;
