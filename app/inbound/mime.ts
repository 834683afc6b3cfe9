/**
 * A small, bounded MIME walker for delivery reports. Why not mailparser: it folds the
 * machine-readable parts (message/delivery-status, message/feedback-report) into the text body
 * together with the human-readable part, so the per-recipient fields cannot be told apart; and
 * it does far more per message (charset conversion, address and date parsing, streams) than a
 * DSN needs. Unusable mail is kept as a raw sample (reports.ts): nothing else parses messages.
 *
 * Bounded so that hostile input costs little: at most 8 levels and 100 parts; never throws.
 */
export interface MimePart {
  /** Lower-case names; values unfolded, in order. */
  headers: Map<string, string[]>;
  /** Lower-case `type/subtype`; text/plain when absent (RFC 2045 5.2). */
  contentType: string;
  params: Record<string, string>;
  /** Decoded (base64 / quoted-printable) body. */
  body: Buffer;
  /** Parts of a multipart, or the one enclosed message of message/rfc822 / text/rfc822-headers. */
  children: MimePart[];
}

const MAX_DEPTH = 8;
const MAX_PARTS = 100;

export function header(part: MimePart, name: string): string | undefined {
  return part.headers.get(name)?.[0];
}

/** Header block text → unfolded fields. */
export function parseHeaderBlock(block: string): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  let current: [string, string] | undefined;
  const flush = () => {
    if (!current) return;
    const list = headers.get(current[0]);
    if (list) list.push(current[1].trim());
    else headers.set(current[0], [current[1].trim()]);
    current = undefined;
  };
  for (const line of block.split(/\r?\n/)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && current) {
      current[1] += ` ${line.trim()}`;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon > 0 && /^[!-9;-~]+$/.test(line.slice(0, colon).trim())) current = [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1)];
  }
  flush();
  return headers;
}

/** `multipart/report; report-type=delivery-status; boundary="x"` → type and parameters. */
export function parseContentType(value: string | undefined): { type: string; params: Record<string, string> } {
  if (!value) return { type: 'text/plain', params: {} };
  const params: Record<string, string> = {};
  const re = /;\s*([^\s=;]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]*)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) params[m[1].toLowerCase()] = (m[3] ?? m[2]).replace(/\\(.)/g, '$1').trim();
  return { type: (value.split(';')[0] ?? '').trim().toLowerCase() || 'text/plain', params };
}

function decodeBody(body: Buffer, encoding: string | undefined): Buffer {
  const enc = (encoding ?? '').trim().toLowerCase();
  if (enc === 'base64') return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (enc === 'quoted-printable') {
    const text = body.toString('latin1').replace(/=\r?\n/g, '');
    return Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  }
  return body;
}

function splitHeadBody(raw: Buffer): { head: string; body: Buffer } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return { head: raw.toString('latin1'), body: Buffer.alloc(0) };
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { head: raw.subarray(0, crlf).toString('latin1'), body: raw.subarray(crlf + 4) };
  return { head: raw.subarray(0, lf).toString('latin1'), body: raw.subarray(lf + 2) };
}

function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const text = body.toString('latin1');
  const delimiter = `--${boundary}`;
  const parts: Buffer[] = [];
  let start = -1;
  let pos = 0;
  for (;;) {
    const at = text.indexOf(delimiter, pos);
    if (at < 0) break;
    const lineStart = at === 0 || text[at - 1] === '\n';
    pos = at + delimiter.length;
    if (!lineStart) continue;
    if (start >= 0) {
      // The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
      const end = text[at - 2] === '\r' ? at - 2 : at - 1;
      parts.push(Buffer.from(text.slice(start, Math.max(start, end)), 'latin1'));
    }
    if (text.startsWith('--', pos)) return parts;
    const eol = text.indexOf('\n', pos);
    if (eol < 0) return parts;
    start = eol + 1;
  }
  if (start >= 0) parts.push(Buffer.from(text.slice(start), 'latin1')); // no closing delimiter: keep what came
  return parts;
}

export function parseMime(raw: Buffer): MimePart {
  const budget = { parts: 0 };
  return parsePart(raw, 0, budget);
}

function parsePart(raw: Buffer, depth: number, budget: { parts: number }): MimePart {
  budget.parts++;
  const { head, body: rawBody } = splitHeadBody(raw);
  const headers = parseHeaderBlock(head);
  const { type, params } = parseContentType(headers.get('content-type')?.[0]);
  const part: MimePart = { headers, contentType: type, params, body: rawBody, children: [] };
  if (depth >= MAX_DEPTH) return part;
  if (type.startsWith('multipart/') && params.boundary) {
    for (const child of splitMultipart(rawBody, params.boundary)) {
      if (budget.parts >= MAX_PARTS) break;
      part.children.push(parsePart(child, depth + 1, budget));
    }
    return part;
  }
  part.body = decodeBody(rawBody, headers.get('content-transfer-encoding')?.[0]);
  if (type === 'message/rfc822' || type === 'message/global') part.children.push(parsePart(part.body, depth + 1, budget));
  else if (type === 'text/rfc822-headers' || type === 'message/global-headers') {
    part.children.push({ headers: parseHeaderBlock(part.body.toString('utf8')), contentType: 'text/plain', params: {}, body: Buffer.alloc(0), children: [] });
  }
  return part;
}

/** Every part, depth first. */
export function* walk(part: MimePart): Generator<MimePart> {
  yield part;
  for (const c of part.children) yield* walk(c);
}
