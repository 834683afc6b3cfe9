/**
 * Templates: CRUD by id or unique name, compiling (syntax checked on every write) and rendering.
 * Compiled templates are cached per (id, updatedAt), so an edit is seen at once and a hot
 * template is parsed once per process.
 */
import type { Db, Prisma } from '../db/client';
import { ConflictError, NotFoundError, ValidationError, type FieldError } from '../errors';
import { isUniqueViolation } from '../shared/db-errors';
import { decodeCursor, encodeCursor } from '../shared/cursor';
import { hasHeaderBreak, HEADER_BREAK_MESSAGE } from '../shared/headers';
import { looksLikeUuid } from '../shared/ids';
import type { Template } from '../generated/prisma/client';
import { compileTemplate, renderTemplate, TemplateDataError, TemplateSyntaxError, type CompiledTemplate } from './engine';
import { templateName, type CreateTemplateInput, type UpdateTemplateInput } from './schemas';

export interface CompiledEmailTemplate {
  id: string;
  name: string;
  subject: CompiledTemplate;
  html: CompiledTemplate | null;
  text: CompiledTemplate | null;
  variables: string[];
}

export interface RenderedEmail {
  subject: string;
  html: string | null;
  text: string | null;
}

export type TemplateSummary = Pick<TemplateView, 'id' | 'name' | 'subject' | 'createdAt' | 'updatedAt'>;

export interface TemplateView {
  id: string;
  name: string;
  subject: string;
  html: string | null;
  text: string | null;
  variables: string[];
  createdAt: string;
  updatedAt: string;
}

/** How an email names its template. */
export type TemplateRef = { id: string; name?: undefined } | { name: string; id?: undefined };

const CACHE_SIZE = 500;

function compileField(source: string, field: string, errors: FieldError[]): CompiledTemplate | null {
  try {
    return compileTemplate(source);
  } catch (err) {
    if (err instanceof TemplateSyntaxError) {
      errors.push({ path: `/${field}`, message: err.message });
      return null;
    }
    throw err;
  }
}

/** Compiles all three fields, reporting every syntax error at once. */
function compileAll(t: { subject: string; html?: string | null; text?: string | null }) {
  const errors: FieldError[] = [];
  const subject = compileField(t.subject, 'subject', errors);
  const html = t.html == null ? null : compileField(t.html, 'html', errors);
  const text = t.text == null ? null : compileField(t.text, 'text', errors);
  if (errors.length > 0) throw new ValidationError(`template does not compile: ${errors[0].path}: ${errors[0].message}`, errors);
  return { subject: subject!, html, text };
}

function variablesOf(...compiled: (CompiledTemplate | null)[]): string[] {
  return [...new Set(compiled.flatMap((c) => c?.variables ?? []))];
}

function toView(row: Template, variables: string[]): TemplateView {
  return {
    id: row.id,
    name: row.name,
    subject: row.subject,
    html: row.html,
    text: row.text,
    variables,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Templates are listed by name: the cursor is the last name. */
const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Renders a compiled template. Variables missing from `data` are a 422 whose paths point into
 * the request at `dataPath` (e.g. "/template/data"). A rendered subject must stay one header line.
 */
export function renderEmailTemplate(t: CompiledEmailTemplate, data: Record<string, unknown>, dataPath: string): RenderedEmail {
  const errors: FieldError[] = [];
  const render = (template: CompiledTemplate | null, mode: 'html' | 'text'): string | null => {
    if (!template) return null;
    try {
      return renderTemplate(template, data, mode);
    } catch (err) {
      if (!(err instanceof TemplateDataError)) throw err;
      for (const p of err.problems) {
        const path = `${dataPath}/${p.variable.replace(/\./g, '/')}`;
        if (!errors.some((e) => e.path === path)) errors.push({ path, message: p.message });
      }
      return null;
    }
  };
  const subject = render(t.subject, 'text');
  const html = render(t.html, 'html');
  const text = render(t.text, 'text');
  if (errors.length > 0) {
    throw new ValidationError(`template "${t.name}" cannot be rendered: ${errors.map((e) => e.path).join(', ')}: ${errors[0].message}`, errors);
  }
  if (hasHeaderBreak(subject!)) {
    throw new ValidationError(`the rendered subject of template "${t.name}" ${HEADER_BREAK_MESSAGE}`, [{ path: dataPath, message: `a value used in the subject ${HEADER_BREAK_MESSAGE}` }]);
  }
  return { subject: subject!, html, text };
}

export function createTemplateService(deps: { db: Db }) {
  const { db } = deps;
  const cache = new Map<string, CompiledEmailTemplate>();

  function compiled(row: Template): CompiledEmailTemplate {
    const key = `${row.id}:${row.updatedAt.getTime()}`;
    let hit = cache.get(key);
    if (!hit) {
      const c = compileAll(row);
      hit = { id: row.id, name: row.name, ...c, variables: variablesOf(c.subject, c.html, c.text) };
      if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
      cache.set(key, hit);
    }
    return hit;
  }

  async function find(applicationId: string, idOrName: string): Promise<Template> {
    const uuid = looksLikeUuid(idOrName);
    // A string that is neither a UUID nor a possible name (e.g. "%00" decoded) names nothing.
    if (!uuid && !templateName.safeParse(idOrName).success) throw new NotFoundError(`no template ${JSON.stringify(idOrName)}`);
    const row = uuid
      ? await db.template.findUnique({ where: { id: idOrName, applicationId } })
      : await db.template.findUnique({ where: { applicationId_name: { applicationId, name: idOrName } } });
    if (!row) throw new NotFoundError(`no template ${JSON.stringify(idOrName)}`);
    return row;
  }

  async function create(applicationId: string, input: CreateTemplateInput): Promise<TemplateView> {
    const c = compileAll(input);
    try {
      const row = await db.template.create({ data: { applicationId, name: input.name, subject: input.subject, html: input.html ?? null, text: input.text ?? null } });
      return toView(row, variablesOf(c.subject, c.html, c.text));
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a template named "${input.name}" already exists`);
      throw err;
    }
  }

  async function list(applicationId: string, query: { limit: number; cursor?: string }): Promise<{ data: TemplateSummary[]; nextCursor: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, (name) => TEMPLATE_NAME.test(name));
    const rows = await db.template.findMany({
      where: after === undefined ? { applicationId } : { applicationId, name: { gt: after } },
      orderBy: { name: 'asc' },
      take: query.limit + 1,
      // List views carry no bodies: a page of 1 MiB templates was 3.2 MB and 2.5 s.
      select: { id: true, name: true, subject: true, createdAt: true, updatedAt: true },
    });
    const page = rows.slice(0, query.limit);
    return {
      data: page.map((r) => ({ id: r.id, name: r.name, subject: r.subject, createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString() })),
      nextCursor: rows.length > query.limit ? encodeCursor(page[page.length - 1].name) : null,
    };
  }

  async function get(applicationId: string, idOrName: string): Promise<TemplateView> {
    const row = await find(applicationId, idOrName);
    return toView(row, compiled(row).variables);
  }

  async function update(applicationId: string, idOrName: string, patch: UpdateTemplateInput): Promise<TemplateView> {
    const current = await find(applicationId, idOrName);
    const next = {
      subject: patch.subject ?? current.subject,
      html: patch.html === undefined ? current.html : patch.html,
      text: patch.text === undefined ? current.text : patch.text,
    };
    if (next.html === null && next.text === null) {
      throw new ValidationError('a template needs html, text or both', [{ path: '/text', message: 'removing both bodies leaves nothing to send' }]);
    }
    compileAll(next);
    // Last writer wins, as for any PATCH without a precondition (no ETags): refusing a
    // concurrent edit with a 409 nobody asked for only made clients retry blindly. Only the
    // fields this PATCH names are written, so concurrent PATCHes of different fields both stay;
    // removing a body still requires the other one to be there at write time.
    const data: Prisma.TemplateUpdateManyMutationInput = Object.fromEntries(
      (['name', 'subject', 'html', 'text'] as const).filter((f) => patch[f] !== undefined).map((f) => [f, patch[f]]),
    );
    const where: Prisma.TemplateWhereInput = {
      id: current.id,
      applicationId,
      ...(patch.html === null ? { text: { not: null } } : {}),
      ...(patch.text === null ? { html: { not: null } } : {}),
    };
    let rows: Template[];
    try {
      rows = await db.template.updateManyAndReturn({ where, data });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a template named "${patch.name}" already exists`);
      throw err;
    }
    if (rows.length === 0) {
      if (!(await db.template.findUnique({ where: { id: current.id, applicationId }, select: { id: true } }))) {
        throw new NotFoundError(`no template ${JSON.stringify(idOrName)} (deleted while updating it)`);
      }
      throw new ConflictError('a concurrent change removed the other body; a template needs html, text or both');
    }
    return toView(rows[0], compiled(rows[0]).variables);
  }

  async function remove(applicationId: string, idOrName: string): Promise<void> {
    const row = await find(applicationId, idOrName);
    // Emails keep their rendered content; their templateId becomes null (onDelete: SetNull).
    await db.template.deleteMany({ where: { id: row.id, applicationId } });
  }

  async function render(applicationId: string, idOrName: string, data: Record<string, unknown>): Promise<RenderedEmail> {
    return renderEmailTemplate(compiled(await find(applicationId, idOrName)), data, '/data');
  }

  /** Compiled templates for the given references, in one query; unknown ones are a 422 at `paths`. */
  async function resolve(applicationId: string, refs: { ref: TemplateRef; path: string }[]): Promise<CompiledEmailTemplate[]> {
    const ids = [...new Set(refs.flatMap((r) => (r.ref.id !== undefined ? [r.ref.id] : [])))];
    const names = [...new Set(refs.flatMap((r) => (r.ref.name !== undefined ? [r.ref.name] : [])))];
    const rows = await db.template.findMany({ where: { applicationId, OR: [{ id: { in: ids } }, { name: { in: names } }] } });
    const errors: FieldError[] = [];
    const out = refs.map(({ ref, path }) => {
      const row = rows.find((r) => (ref.id !== undefined ? r.id === ref.id : r.name === ref.name));
      if (!row) {
        errors.push({ path, message: `no template ${ref.id !== undefined ? `with id ${ref.id}` : `named "${ref.name}"`}` });
        return undefined;
      }
      return compiled(row);
    });
    if (errors.length > 0) throw new ValidationError(`unknown template: ${errors[0].message}`, errors);
    return out as CompiledEmailTemplate[];
  }

  return { create, list, get, update, remove, render, resolve };
}

export type TemplateService = ReturnType<typeof createTemplateService>;
