/**
 * The event-type catalog of an application (table event_types) and the payload check on publish.
 * A type's schema is checked as a JSON Schema (draft 07, ajv) when stored: a bad one is a 422 and
 * nothing is stored. On POST /v1/events the payload of a type with a schema is validated; the
 * compiled validator is cached per (type id, version), so a changed schema is compiled once and an
 * unchanged one never again. Unknown types stay publishable (the catalog is documentation plus
 * optional checks, not a whitelist).
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Pool } from 'pg';
import { Prisma, type Db } from '../db/client';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { createCoalescer } from '../shared/coalesce';
import { isUniqueViolation } from '../shared/db-errors';
import { BUILT_IN_EVENT_TYPES } from './event-catalog';
import type { RegisteredType } from './events';

export interface EventTypeView {
  name: string;
  description: string | null;
  schema: Record<string, unknown> | null;
  deprecated: boolean;
  builtIn: boolean;
  createdAt: string | null;
  updatedAt: string | null;
}

interface EventTypeRow {
  id: string;
  name: string;
  description: string | null;
  schema: Prisma.JsonValue | null;
  version: number;
  deprecated: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** Compiled validators kept; a schema beyond this is compiled again when next used (1,000 × a few KiB). */
const MAX_CACHED_VALIDATORS = 1000;

const builtInNames = new Set(BUILT_IN_EVENT_TYPES.map((t) => t.name));
const builtInViews: EventTypeView[] = BUILT_IN_EVENT_TYPES.map((t) => ({ name: t.name, description: t.description, schema: t.schema, deprecated: false, builtIn: true, createdAt: null, updatedAt: null }));

function view(row: EventTypeRow): EventTypeView {
  return {
    name: row.name,
    description: row.description,
    schema: (row.schema as Record<string, unknown> | null) ?? null,
    deprecated: row.deprecated,
    builtIn: false,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** ajv's instancePath is already a JSON pointer ("" for the root). */
const pointerOf = (e: ErrorObject) => e.instancePath || '/';

/** Lookups of concurrent publishes read together: at most this many statements at once, this many types each. */
const MAX_LOOKUPS_IN_FLIGHT = 2;
const MAX_LOOKUPS_PER_STATEMENT = 500;

const LOOKUP_SQL = `
  SELECT k."n"::int AS "n", t."id"::text AS "id", t."version", t."deprecated", t."schema"
  FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS k("applicationId", "name", "n")
  JOIN "event_types" t ON t."applicationId" = k."applicationId" AND t."name" = k."name"`;

/**
 * @param deps.pool the accept path's statement pool (app/api.ts): the lookup every publish makes
 *   goes through it, prepared, grouped with concurrent publishes' (always read, never cached, so a
 *   schema change applies to the next publish on every replica). Without one, through Prisma.
 */
export function createEventTypeService(deps: { db: Db; pool?: Pick<Pool, 'query'> }) {
  const { db, pool } = deps;
  const lookups = pool
    ? createCoalescer<{ applicationId: string; name: string; row?: RegisteredType }>({
        maxInFlight: MAX_LOOKUPS_IN_FLIGHT,
        maxItems: MAX_LOOKUPS_PER_STATEMENT,
        async run(units) {
          const { rows } = await pool.query<RegisteredType & { n: number }>({
            name: 'event-type-check',
            text: LOOKUP_SQL,
            values: [units.map((u) => u.applicationId), units.map((u) => u.name)],
          });
          for (const r of rows) units[r.n - 1].row = { id: r.id, version: r.version, deprecated: r.deprecated, schema: r.schema };
        },
      })
    : undefined;

  async function typeForCheck(applicationId: string, name: string): Promise<RegisteredType | null> {
    if (!lookups) return db.eventType.findUnique({ where: { applicationId_name: { applicationId, name } }, select: { id: true, version: true, deprecated: true, schema: true } });
    const unit: { applicationId: string; name: string; row?: RegisteredType } = { applicationId, name };
    await lookups([unit]);
    return unit.row ?? null;
  }
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();

  /** Compiles a client's schema, or throws the 422 that says why it is not one. */
  function compile(schema: Record<string, unknown>, field = '/schema'): ValidateFunction {
    try {
      return ajv.compile(schema);
    } catch (err) {
      const message = `not a valid JSON Schema: ${(err as Error).message}`;
      throw new ValidationError(`invalid request body: ${field}: ${message}`, [{ path: field, message }]);
    } finally {
      // compile() registers schemas with an $id; forget them so a second type may reuse one.
      if (typeof schema.$id === 'string') ajv.removeSchema(schema.$id);
    }
  }

  function refuseBuiltIn(name: string) {
    if (builtInNames.has(name)) throw new ConflictError(`"${name}" is a built-in event type`);
  }

  async function create(applicationId: string, input: { name: string; description?: string; schema?: Record<string, unknown>; deprecated?: boolean }): Promise<EventTypeView> {
    refuseBuiltIn(input.name);
    if (input.schema) compile(input.schema);
    try {
      const row = await db.eventType.create({
        data: { applicationId, name: input.name, description: input.description ?? null, schema: (input.schema ?? undefined) as Prisma.InputJsonValue | undefined, deprecated: input.deprecated ?? false },
      });
      return view(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`an event type named "${input.name}" already exists`);
      throw err;
    }
  }

  async function list(applicationId: string): Promise<{ data: EventTypeView[] }> {
    const rows = await db.eventType.findMany({ where: { applicationId }, orderBy: { name: 'asc' } });
    return { data: [...builtInViews, ...rows.map(view)] };
  }

  async function get(applicationId: string, name: string): Promise<EventTypeView> {
    const builtIn = builtInViews.find((t) => t.name === name);
    if (builtIn) return builtIn;
    const row = await db.eventType.findUnique({ where: { applicationId_name: { applicationId, name } } });
    if (!row) throw new NotFoundError(`no event type named ${JSON.stringify(name)}`);
    return view(row);
  }

  async function update(applicationId: string, name: string, patch: { description?: string | null; schema?: Record<string, unknown> | null; deprecated?: boolean }): Promise<EventTypeView> {
    refuseBuiltIn(name);
    if (patch.schema) compile(patch.schema);
    const schemaChange = patch.schema === undefined ? {} : { schema: patch.schema === null ? Prisma.DbNull : (patch.schema as Prisma.InputJsonValue), version: { increment: 1 } };
    const { count } = await db.eventType.updateMany({
      where: { applicationId, name },
      data: { ...(patch.description !== undefined ? { description: patch.description } : {}), ...(patch.deprecated !== undefined ? { deprecated: patch.deprecated } : {}), ...schemaChange },
    });
    if (count === 0) throw new NotFoundError(`no event type named ${JSON.stringify(name)}`);
    return get(applicationId, name);
  }

  /**
   * The check POST /v1/events makes: a 422 naming the JSON path when the application's type has a
   * schema the payload breaks. Returns whether the type is deprecated (published anyway, with a
   * warning). One indexed read per publish; the schema is compiled once per version.
   */
  async function checkPayload(applicationId: string, type: string, payload: unknown): Promise<{ deprecated: boolean }> {
    return checkRegistered(await typeForCheck(applicationId, type), type, payload);
  }

  /** The same check against a registration already read (the recording statement reads it: events.ts). */
  function checkRegistered(row: RegisteredType | null, type: string, payload: unknown): { deprecated: boolean } {
    if (!row) return { deprecated: false };
    if (row.schema !== null && typeof row.schema === 'object') {
      const key = `${row.id}:${row.version}`;
      let validate = validators.get(key);
      if (!validate) {
        validate = compile(row.schema as Record<string, unknown>);
        if (validators.size >= MAX_CACHED_VALIDATORS) validators.delete(validators.keys().next().value!);
        validators.set(key, validate);
      }
      if (!validate(payload)) {
        const errors = (validate.errors ?? []).map((e) => ({ path: `/payload${pointerOf(e) === '/' ? '' : pointerOf(e)}`, message: e.message ?? 'is invalid' }));
        const first = errors[0];
        throw new ValidationError(`payload does not match the schema of event type "${type}": ${first.path}: ${first.message}`, errors);
      }
    }
    return { deprecated: row.deprecated };
  }

  return { create, list, get, update, checkPayload, checkRegistered };
}

export type EventTypeService = ReturnType<typeof createEventTypeService>;
