/**
 * Listings and stats against the real api and worker: events by type and window, an endpoint's
 * deliveries by status, one delivery with its attempts, endpoint stats; cursor paging that
 * neither repeats nor skips rows while new ones arrive; bad filters and cursors as 422.
 */
import { startReceiver, type Receiver } from '../support/receiver';
import { eventually } from '../support/eventually';
import { FAST_DELIVERY_ENV, startStack, type Stack } from '../support/stack';

jest.setTimeout(90_000);

let s: Stack;
let rx: Receiver;
beforeAll(async () => {
  s = await startStack('wh_listings', { env: FAST_DELIVERY_ENV });
  // Payloads with fail: true are refused until the schedule (5 attempts) is used up.
  rx = await startReceiver({ answer: (req) => (JSON.parse(req.body).data.fail ? { status: 400, body: 'no' } : { status: 200, body: 'ok' }) });
});
afterAll(async () => {
  await s?.stop();
  await rx?.close();
});

async function pageAll<T extends { id: string }>(path: string, limit: number, between?: () => Promise<void>): Promise<T[]> {
  const seen: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page: { data: T[]; nextCursor: string | null } = await s.json('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(page.data.length).toBeLessThanOrEqual(limit);
    seen.push(...page.data);
    cursor = page.nextCursor;
    await between?.();
  } while (cursor);
  return seen;
}

describe('GET /v1/events', () => {
  it('pages by type, newest first, without repeating or skipping rows while new ones arrive', async () => {
    const published: string[] = [];
    for (let i = 0; i < 60; i++) published.push((await s.publish('list.paged', { i })).id);
    await s.publish('list.other', {});

    let added = 0;
    const listed = await pageAll<{ id: string; type: string; createdAt: string }>('/v1/events?type=list.paged', 7, async () => {
      // Rows keep arriving between pages (same type, so they compete for the same index range).
      for (let k = 0; k < 3; k++, added++) await s.publish('list.paged', { late: added });
    });
    expect(added).toBeGreaterThan(20);
    const ids = listed.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of published) expect(ids).toContain(id);
    expect(listed.every((e) => e.type === 'list.paged')).toBe(true);
    const times = listed.map((e) => Date.parse(e.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('filters by window and includes payloads on request', async () => {
    const before = await s.publish('list.window', { n: 1 });
    await new Promise((r) => setTimeout(r, 20));
    const since = new Date().toISOString();
    const inside = await s.publish('list.window', { n: 2 });
    await new Promise((r) => setTimeout(r, 20));
    const until = new Date().toISOString();
    await s.publish('list.window', { n: 3 });
    const page = await s.json<{ data: { id: string; payload?: unknown }[] }>('GET', `/v1/events?type=list.window&since=${since}&until=${until}&withPayload=true`);
    expect(page.data).toEqual([{ id: inside.id, type: 'list.window', createdAt: expect.any(String), payload: { n: 2 } }]);
    const all = await s.json<{ data: { id: string; payload?: unknown }[] }>('GET', '/v1/events?type=list.window');
    expect(all.data.map((e) => e.id)).toContain(before.id);
    expect(all.data[0].payload).toBeUndefined();
  });

  it.each([
    ['type=bad type', '/type'],
    ['since=yesterday', '/since'],
    ['since=2026-13-01T00:00:00Z', '/since'],
    ['since=2026-11-30T10:00:00Z&until=2026-11-30T09:00:00Z', '/since'],
    ['cursor=garbage', '/cursor'],
    ['cursor=' + Buffer.from('2026-11-30T10:00:00.000Z|not-a-uuid').toString('base64url'), '/cursor'],
    ['limit=0', '/limit'],
    ['limit=0x10', '/limit'],
    ['withPayload=yes', '/withPayload'],
    ['colour=blue', '/'],
  ])('GET /v1/events?%s → 422 problem naming %s', async (query, path) => {
    const res = await s.call('GET', `/v1/events?${query}`);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = res.body as { errors: { path: string }[] };
    expect(problem.errors.map((e) => e.path)).toContain(path);
  });
});

describe('deliveries and stats of an endpoint', () => {
  it('lists by status, shows attempts, and counts outcomes', async () => {
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['list.delivery'] });
    const published: { id: string; fail: boolean }[] = [];
    for (let i = 0; i < 30; i++) {
      const fail = i % 3 === 0;
      published.push({ id: (await s.publish('list.delivery', { i, fail })).id, fail });
    }
    const settled = await eventually(async () => {
      const pending = await s.json<{ data: unknown[] }>('GET', `/v1/webhook-endpoints/${ep.id}/deliveries?status=pending`);
      return pending.data.length === 0 ? true : undefined;
    }, 'every delivery to settle', 30_000);
    expect(settled).toBe(true);

    const failed = await pageAll<{ id: string; eventId: string; status: string; eventType: string; attemptCount: number }>(`/v1/webhook-endpoints/${ep.id}/deliveries?status=failed`, 4);
    const delivered = await pageAll<{ id: string; eventId: string; status: string }>(`/v1/webhook-endpoints/${ep.id}/deliveries?status=delivered`, 7);
    expect(new Set(failed.map((d) => d.eventId))).toEqual(new Set(published.filter((p) => p.fail).map((p) => p.id)));
    expect(new Set(delivered.map((d) => d.eventId))).toEqual(new Set(published.filter((p) => !p.fail).map((p) => p.id)));
    expect(failed.every((d) => d.status === 'failed' && d.eventType === 'list.delivery' && d.attemptCount === 5)).toBe(true);
    const everything = await pageAll<{ id: string }>(`/v1/webhook-endpoints/${ep.id}/deliveries`, 8);
    expect(everything).toHaveLength(30);
    expect(new Set(everything.map((d) => d.id)).size).toBe(30);

    const one = await s.json<{ id: string; attempts: { number: number; statusCode: number }[] }>('GET', `/v1/webhook-deliveries/${failed[0].id}`);
    expect(one.attempts.map((a) => [a.number, a.statusCode])).toEqual([1, 2, 3, 4, 5].map((n) => [n, 400]));

    const stats = await s.json<any>('GET', `/v1/webhook-endpoints/${ep.id}/stats`);
    expect(stats.last24h).toEqual({ delivered: 20, failed: 10, pending: 0, total: 30 });
    expect(stats.last7d).toEqual(stats.last24h);
    expect(Date.parse(stats.lastSuccessAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(stats.attemptDurationMs.samples).toBe(20 + 10 * 5);
    expect(stats.attemptDurationMs.p50).toEqual(expect.any(Number));
    expect(stats.attemptDurationMs.p95).toBeGreaterThanOrEqual(stats.attemptDurationMs.p50);
    expect(stats.failingSince === null || typeof stats.failingSince === 'string').toBe(true);
  });

  it('404 for an endpoint or delivery that does not exist; 422 for a bad status', async () => {
    const missing = '00000000-0000-4000-8000-00000000dead';
    for (const path of [`/v1/webhook-endpoints/${missing}/deliveries`, `/v1/webhook-endpoints/${missing}/stats`, `/v1/webhook-deliveries/${missing}`, '/v1/webhook-deliveries/nope']) {
      expect((await s.call('GET', path)).status).toBe(404);
    }
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['list.none'] });
    const res = await s.call('GET', `/v1/webhook-endpoints/${ep.id}/deliveries?status=lost`);
    expect(res.status).toBe(422);
    expect((res.body as { errors: { path: string }[] }).errors[0].path).toBe('/status');
  });
});
