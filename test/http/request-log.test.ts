/**
 * Every request's log lines carry its request id and, once authenticated, its application (issue
 * 14's observability): checked on the access line, which the api writes at debug level.
 */
import { createApiKeyService } from '../../app/auth/api-keys';
import { createLogger } from '../../app/log';
import { eventually } from '../support/eventually';
import { startStack, type Stack } from '../support/stack';

jest.setTimeout(60_000);

interface Line {
  msg: string;
  level: number;
  requestId?: string;
  application?: string;
  applicationId?: string;
  path?: string;
  status?: number;
}
const lines: Line[] = [];
const apiLog = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });

let s: Stack;
beforeAll(async () => {
  s = await startStack('http_request_log', { worker: false, apiLog });
});
afterAll(async () => {
  await s?.stop();
});

test('the access line names the request id and the application of the key', async () => {
  const app = await s.t.db.application.create({ data: { name: 'request-log-app' } });
  const { key } = await createApiKeyService({ db: s.t.db }).create({ name: 'log', scopes: ['emails:read'], applicationId: app.id });
  const res = await fetch(`${s.base}/v1/emails`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'req-log-1' } });
  expect(res.status).toBe(200);
  expect(res.headers.get('x-request-id')).toBe('req-log-1');
  const line = await eventually(async () => lines.find((l) => l.requestId === 'req-log-1' && l.msg === 'request'), 'the access line');
  expect(line).toMatchObject({ path: '/v1/emails', status: 200, application: 'request-log-app', applicationId: app.id });
});

test('a request refused before authentication still logs its own request id, and no application', async () => {
  const res = await fetch(`${s.base}/v1/emails`, { headers: { authorization: 'Bearer nope', 'x-request-id': 'req-log-2' } });
  expect(res.status).toBe(401);
  const line = await eventually(async () => lines.find((l) => l.requestId === 'req-log-2' && l.msg === 'request'), 'the access line');
  expect(line).toMatchObject({ path: '/v1/emails', status: 401 });
  expect(line.applicationId).toBeUndefined();
});
