/**
 * The template language, deliberately small (a strict subset of Mustache's variable tags):
 *
 * - `{{ name }}` or `{{ user.firstName }}` inserts a value; in HTML bodies it is HTML-escaped.
 * - `{{{ name }}}` inserts a value unescaped, in HTML bodies only (for trusted markup); in the
 *   subject and text bodies it is the same as `{{ }}`.
 * - Values must be strings, numbers or booleans. A missing value is an error, not an empty
 *   string: a transactional email that silently says "Hello ," is a bug the caller wants to hear of.
 *
 * No sections, loops, partials or helpers: logic stays in the calling application, and a template
 * cannot run code or reach anything but the data it is given. Templates are compiled once
 * (`compileTemplate`) into literal and variable parts; rendering is a single pass.
 */

export type RenderMode = 'html' | 'text';

interface VariablePart {
  path: string[];
  /** `{{{ }}}`: not escaped in HTML. */
  raw: boolean;
}

export type TemplatePart = string | VariablePart;

export interface CompiledTemplate {
  parts: TemplatePart[];
  /** Dotted names of every variable used, in order of first use. */
  variables: string[];
}

/** A problem with the template source, at a character offset. */
export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'TemplateSyntaxError';
  }
}

/** Variables the data did not provide, or provided with a type that cannot be inserted. */
export class TemplateDataError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(problems.map((p) => `${p.variable}: ${p.message}`).join('; '));
    this.name = 'TemplateDataError';
  }
}

const PATH = /^[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|\d+))*$/;

export function compileTemplate(source: string): CompiledTemplate {
  const parts: TemplatePart[] = [];
  const variables: string[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open === -1) {
      parts.push(source.slice(i));
      break;
    }
    if (open > i) parts.push(source.slice(i, open));
    const raw = source.startsWith('{{{', open);
    const closer = raw ? '}}}' : '}}';
    const start = open + (raw ? 3 : 2);
    const close = source.indexOf(closer, start);
    if (close === -1) throw new TemplateSyntaxError(`"${raw ? '{{{' : '{{'}" at offset ${open} is never closed with "${closer}"`, open);
    const name = source.slice(start, close).trim();
    if (!PATH.test(name)) {
      throw new TemplateSyntaxError(
        `"${source.slice(open, close + closer.length).slice(0, 60)}" at offset ${open} is not a variable (use letters, digits, _ and dots, e.g. {{ user.name }})`,
        open,
      );
    }
    parts.push({ path: name.split('.'), raw });
    if (!variables.includes(name)) variables.push(name);
    i = close + closer.length;
  }
  return { parts, variables };
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

function lookup(data: unknown, path: string[]): unknown {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Renders with `data`; throws TemplateDataError listing every missing or unusable variable. */
export function renderTemplate(template: CompiledTemplate, data: Record<string, unknown>, mode: RenderMode): string {
  let out = '';
  const problems: { variable: string; message: string }[] = [];
  for (const part of template.parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const value = lookup(data, part.path);
    const variable = part.path.join('.');
    if (value === undefined || value === null) {
      if (!problems.some((p) => p.variable === variable)) problems.push({ variable, message: 'missing from the template data' });
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      if (!problems.some((p) => p.variable === variable)) {
        problems.push({ variable, message: `is ${Array.isArray(value) ? 'an array' : 'an object'}; give a string, number or boolean` });
      }
      continue;
    }
    const text = String(value);
    out += mode === 'html' && !part.raw ? escapeHtml(text) : text;
  }
  if (problems.length > 0) throw new TemplateDataError(problems);
  return out;
}
