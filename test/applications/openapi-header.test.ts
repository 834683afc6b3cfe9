/** X-Application in /openapi.json: one reusable header parameter on every /v1 operation that acts on an application. */
import { PLATFORM_OPERATIONS } from '../../app/http/openapi';
import { request } from '../support/http';
import { FAST_ENV, startStack, type Stack } from '../support/stack';

let s: Stack;

beforeAll(async () => {
  s = await startStack('applications_openapi_header', { worker: false, env: FAST_ENV });
});
afterAll(async () => {
  await s?.stop();
});

type Operation = { operationId?: string; parameters?: { $ref?: string }[] };

test('every /v1 operation but the platform ones references the X-Application parameter', async () => {
  const doc = (await request(s.base, undefined, 'GET', '/openapi.json')).body as {
    paths: Record<string, Record<string, Operation>>;
    components: { parameters: Record<string, { name: string; in: string; required: boolean; description: string }> };
  };
  expect(doc.components.parameters.XApplication).toMatchObject({ name: 'X-Application', in: 'header', required: false });
  expect(doc.components.parameters.XApplication.description).toMatch(/Required with a platform key/);

  const withHeader: string[] = [];
  const without: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/v1/')) continue;
    for (const op of Object.values(item)) {
      const refs = (op.parameters ?? []).filter((p) => p.$ref === '#/components/parameters/XApplication');
      expect(refs.length).toBeLessThanOrEqual(1);
      (refs.length === 1 ? withHeader : without).push(op.operationId ?? path);
    }
  }
  expect(without.sort()).toEqual([...PLATFORM_OPERATIONS].sort());
  expect(withHeader).toEqual(expect.arrayContaining(['sendEmail', 'listApiKeys']));
  expect(withHeader.length).toBeGreaterThan(10);
});
