/** HTTP to the api under test, and the one check of a problem+json answer (RFC 9457). */
import http from 'node:http';

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or the text when it is not JSON (undefined when empty). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

/** A request with an optional API key; an object body is sent as JSON, a string as it is. */
export async function request(base: string, key: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return answer(res.status, res.headers, await res.text());
}

function answer(status: number, headers: Headers, text: string): ApiResponse {
  let parsed: unknown = text || undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status, headers, body: parsed, text };
}

/**
 * Any method, any bytes, any headers, as sent (fetch refuses TRACE and rewrites some headers):
 * for the fuzzer's regressions. A body goes with content-type application/json unless overridden.
 */
export function rawRequest(base: string, key: string | undefined, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<ApiResponse> {
  const sent = {
    ...(key ? { authorization: `Bearer ${key}` } : {}),
    ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
    ...headers,
  };
  return new Promise((resolve, reject) => {
    const req = http.request(base + path, { method, headers: sent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const received = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) received.set(name, Array.isArray(value) ? value.join(', ') : value);
        resolve(answer(res.statusCode!, received, Buffer.concat(chunks).toString('utf8')));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface ExpectedProblem {
  status?: number;
  detail?: RegExp;
  /** A JSON pointer that `errors` must name. */
  path?: string;
}

/** What is wrong with `res` as the expected problem answer; empty when nothing is (for suites that collect failures). */
export function problemFailures(res: ApiResponse, expected: ExpectedProblem = {}): string[] {
  const problem = typeof res.body === 'object' && res.body !== null ? res.body : {};
  const paths: string[] = Array.isArray(problem.errors) ? problem.errors.map((e: { path: string }) => e.path) : [];
  return [
    expected.status !== undefined && res.status !== expected.status && `status ${res.status}, expected ${expected.status}`,
    expected.status === undefined && res.status >= 500 && `server error ${res.status}`,
    !/^application\/problem\+json/.test(res.headers.get('content-type') ?? '') && `content-type ${res.headers.get('content-type')}`,
    (problem.status !== res.status || typeof problem.title !== 'string' || !/^https:\/\/easeemail\.dev\/problems\//.test(problem.type ?? '')) && 'not a problem document',
    expected.detail && !expected.detail.test(problem.detail ?? '') && `detail "${problem.detail}" does not match ${expected.detail}`,
    expected.path && !paths.includes(expected.path) && `errors name ${JSON.stringify(paths)}, expected ${expected.path}`,
    /\bat .*\.[jt]s:\d+|at \w+ \(/.test(res.text) && 'leaks a stack trace',
  ].filter((f): f is string => typeof f === 'string');
}

/** Asserts a problem+json answer with this status (and detail, or the field it names); returns the problem. */
export function expectProblem(res: ApiResponse, status: number, expected: RegExp | Omit<ExpectedProblem, 'status'> = {}): { status: number; detail: string; errors?: { path: string; message: string }[] } {
  const wanted = expected instanceof RegExp ? { detail: expected } : expected;
  expect({ failures: problemFailures(res, { status, ...wanted }), text: res.text.slice(0, 500) }).toEqual({ failures: [], text: res.text.slice(0, 500) });
  return res.body;
}
