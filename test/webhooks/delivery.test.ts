/**
 * Webhook delivery end to end: the real api and worker, PostgreSQL, Redis and HTTP receivers on
 * loopback (WEBHOOK_ALLOW_PRIVATE_NETWORKS=true for that). The retry schedule is shrunk to
 * 200 ms steps and WEBHOOK_TIMEOUT_MS to 3 s (see FAST_DELIVERY_ENV).
 */
import { randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { recordEvent } from '../../app/webhooks/events';
import { RESPONSE_PREFIX_BYTES } from '../../app/webhooks/sender';
import { createSecretBox, generateSecret } from '../../app/webhooks/secrets';
import { eventually } from '../support/eventually';
import { receiverPool } from '../support/receiver';
import { FAST_DELIVERY_ENV, jobsFinished, startStack, type Stack } from '../support/stack';
import { DEFAULT_APPLICATION_ID } from '../../app/applications';

jest.setTimeout(60_000);

let s: Stack;
const receivers = receiverPool();
const receiver = receivers.start;

beforeAll(async () => {
  s = await startStack('wh_delivery', { env: FAST_DELIVERY_ENV });
});
afterAll(async () => {
  await s?.stop();
  await receivers.closeAll();
});

interface DeliveryView {
  id: string;
  endpointId: string;
  status: string;
  attemptCount: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  attempts: { number: number; statusCode: number | null; responseBody: string | null; error: string | null; durationMs: number }[];
}

const event = (id: string) => s.json<{ id: string; deliveries: DeliveryView[] }>('GET', `/v1/events/${id}`);

/** Waits until the event's only delivery reaches `status`. */
async function settled(eventId: string, status: 'delivered' | 'failed', timeoutMs = 15_000): Promise<DeliveryView> {
  return eventually(
    async () => {
      const e = await event(eventId);
      return e.deliveries.length === 1 && e.deliveries[0].status === status ? e.deliveries[0] : undefined;
    },
    `delivery of event ${eventId} to be ${status}`,
    timeoutMs,
  );
}

describe('signatures (verified by the standardwebhooks package)', () => {
  it('signs with the endpoint secret, and with both secrets for 24 h after a rotation', async () => {
    const rx = await receiver();
    const ep = await s.createEndpoint({ url: `${rx.url}/hooks?src=test`, eventTypes: ['sig.checked'] });
    expect(ep.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const first = await s.publish('sig.checked', { orderId: 'A-1', amount: 1999 });
    const [req] = await rx.waitFor(1);
    expect(req.path).toBe('/hooks?src=test');
    expect(req.headers['content-type']).toBe('application/json');
    const verified = new Webhook(ep.secret).verify(req.body, req.headers) as Record<string, unknown>;
    expect(verified).toMatchObject({ id: first.id, type: 'sig.checked', data: { orderId: 'A-1', amount: 1999 } });
    expect(Date.parse(String(verified.timestamp))).toBeGreaterThan(Date.now() - 60_000);
    const delivery = await settled(first.id, 'delivered');
    expect(req.headers['webhook-id']).toBe(delivery.id);
    expect(Math.abs(Number(req.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);

    const rotated = await s.json<{ secret: string; previousSecretExpiresAt: string }>('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`);
    expect(rotated.secret).not.toBe(ep.secret);
    expect(Date.parse(rotated.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    expect(await s.json('GET', `/v1/webhook-endpoints/${ep.id}/secret`)).toEqual(rotated);

    await s.publish('sig.checked', { orderId: 'A-2' });
    const [, after] = await rx.waitFor(2);
    expect(after.headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(rotated.secret).verify(after.body, after.headers)).toMatchObject({ data: { orderId: 'A-2' } });
    expect(new Webhook(ep.secret).verify(after.body, after.headers)).toMatchObject({ data: { orderId: 'A-2' } });
    expect(() => new Webhook(generateSecret()).verify(after.body, after.headers)).toThrow(WebhookVerificationError);
    // A tampered body fails with the right secret.
    expect(() => new Webhook(rotated.secret).verify(after.body.replace('A-2', 'A-3'), after.headers)).toThrow(WebhookVerificationError);
  });

  it('once the overlap is over, only the new secret signs', async () => {
    const rx = await receiver();
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['sig.expired'] });
    const rotated = await s.json<{ secret: string }>('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`);
    await s.t.db.webhookEndpoint.update({ where: { id: ep.id }, data: { previousSecretExpiresAt: new Date(Date.now() - 1000) } });
    await s.publish('sig.expired');
    const [req] = await rx.waitFor(1);
    expect(req.headers['webhook-signature'].split(' ')).toHaveLength(1);
    expect(new Webhook(rotated.secret).verify(req.body, req.headers)).toBeDefined();
    expect(() => new Webhook(ep.secret).verify(req.body, req.headers)).toThrow(WebhookVerificationError);
  });
});

describe('retries', () => {
  it('500 three times then 200: delivered on the fourth attempt, same webhook-id each time, every attempt recorded', async () => {
    const rx = await receiver();
    rx.script({ status: 500, body: 'boom 1' }, { status: 500, body: 'boom 2' }, { status: 500, body: 'boom 3' });
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['retry.four'] });
    const published = await s.publish('retry.four', { n: 4 });
    const d = await settled(published.id, 'delivered');
    expect(d.attemptCount).toBe(4);
    expect(d.nextAttemptAt).toBeNull();
    expect(d.attempts.map((a) => [a.number, a.statusCode, a.responseBody])).toEqual([
      [1, 500, 'boom 1'],
      [2, 500, 'boom 2'],
      [3, 500, 'boom 3'],
      [4, 200, 'ok'],
    ]);
    expect(d.attempts[0].error).toBe('receiver answered HTTP 500');
    expect(d.attempts[3].error).toBeNull();
    expect(new Set(rx.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([d.id]));
    for (const r of rx.requests) expect(new Webhook(ep.secret).verify(r.body, r.headers)).toBeDefined();
    // The schedule (200 ms, ±20 % jitter) spaced them out.
    for (let i = 1; i < 4; i++) expect(rx.requests[i].at - rx.requests[i - 1].at).toBeGreaterThanOrEqual(150);
    // A healthy answer ends the endpoint's failing streak.
    expect((await s.json('GET', `/v1/webhook-endpoints/${ep.id}`)).failingSince).toBeNull();
  });

  it('gives up after the schedule: 1 + schedule length attempts, then failed', async () => {
    const rx = await receiver({ answer: { status: 503 } });
    await s.createEndpoint({ url: rx.url, eventTypes: ['retry.exhausted'] });
    const published = await s.publish('retry.exhausted');
    const d = await settled(published.id, 'failed');
    expect(d.attemptCount).toBe(5);
    expect(d.lastError).toBe('receiver answered HTTP 503');
    expect(rx.count()).toBe(5);
  });

  it('honours Retry-After over a shorter schedule step', async () => {
    const rx = await receiver();
    rx.script({ status: 429, headers: { 'retry-after': '2' } });
    await s.createEndpoint({ url: rx.url, eventTypes: ['retry.after'] });
    const published = await s.publish('retry.after');
    await settled(published.id, 'delivered');
    const gap = rx.requests[1].at - rx.requests[0].at;
    expect(gap).toBeGreaterThanOrEqual(1_950);
    expect(gap).toBeLessThan(4_000);
  });

  it('retries a timeout (WEBHOOK_TIMEOUT_MS shrunk to 3 s)', async () => {
    const rx = await receiver();
    rx.script({ hang: true });
    await s.createEndpoint({ url: rx.url, eventTypes: ['retry.timeout'] });
    const published = await s.publish('retry.timeout');
    const d = await settled(published.id, 'delivered', 20_000);
    expect(d.attempts).toHaveLength(2);
    expect(d.attempts[0]).toMatchObject({ statusCode: null, error: 'no answer within 3000 ms' });
    expect(d.attempts[0].durationMs).toBeGreaterThanOrEqual(2_900);
    expect(d.attempts[1].statusCode).toBe(200);
  });

  it('does not follow redirects: a 3xx is a failed attempt and the target gets nothing', async () => {
    const target = await receiver();
    const rx = await receiver();
    rx.script({ status: 307, headers: { location: `${target.url}/elsewhere` } });
    await s.createEndpoint({ url: rx.url, eventTypes: ['retry.redirect'] });
    const published = await s.publish('retry.redirect');
    const d = await settled(published.id, 'delivered');
    expect(d.attempts[0].statusCode).toBe(307);
    expect(d.attempts[0].error).toMatch(/redirects are not followed \(Location: http:\/\/127\.0\.0\.1:\d+\/elsewhere\)/);
    expect(target.count()).toBe(0);
  });

  it('keeps only a bounded prefix of the answer body', async () => {
    const rx = await receiver({ answer: { status: 200, body: 'x'.repeat(10_000) } });
    await s.createEndpoint({ url: rx.url, eventTypes: ['body.large'] });
    const published = await s.publish('body.large');
    const d = await settled(published.id, 'delivered');
    expect(d.attempts[0].responseBody).toHaveLength(RESPONSE_PREFIX_BYTES);
  });
});

describe('disabling endpoints', () => {
  it('410 Gone disables the endpoint with the reason shown, fails its pending deliveries, and nothing more is sent', async () => {
    const rx = await receiver();
    // The first event waits (Retry-After 30 s) when the second one's 410 arrives.
    rx.script({ status: 503, headers: { 'retry-after': '30' } }, { status: 410, body: 'gone for good' });
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['gone.test'] });
    const waiting = await s.publish('gone.test', { n: 1 });
    await rx.waitFor(1);
    const gone = await s.publish('gone.test', { n: 2 });
    const d = await settled(gone.id, 'failed');
    expect(d.attempts).toEqual([expect.objectContaining({ statusCode: 410, responseBody: 'gone for good', error: 'receiver answered 410 Gone' })]);

    const endpoint = await s.json('GET', `/v1/webhook-endpoints/${ep.id}`);
    expect(endpoint).toMatchObject({ enabled: false, disabledReason: expect.stringMatching(/410 Gone/), disabledAt: expect.any(String) });
    const first = (await event(waiting.id)).deliveries[0];
    expect(first).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/^endpoint disabled: .*410 Gone/) });

    expect((await s.publish('gone.test', { n: 3 })).deliveries).toBe(0);
    // The first event's job is parked for its Retry-After (30 s): run it now; it must find its
    // delivery failed and send nothing.
    const { queues } = s.publisher();
    await (await queues.webhook.getJob(first.id))!.promote();
    await jobsFinished(queues, 'webhook', [first.id]);
    expect(rx.count()).toBe(2);

    const retry = await s.call('POST', `/v1/webhook-deliveries/${first.id}/retry`);
    expect(retry.status).toBe(409);
    expect(retry.body.detail).toMatch(/disabled; enable it first/);
  });

  it('an endpoint failing for 5 days straight is disabled with the reason; a success resets the streak', async () => {
    const rx = await receiver({ answer: { status: 500, body: 'still broken' } });
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['failing.long'] });
    const since = new Date(Date.now() - 5 * 24 * 3600_000 - 60_000);
    await s.t.db.webhookEndpoint.update({ where: { id: ep.id }, data: { failingSince: since } });
    const published = await s.publish('failing.long');
    const d = await settled(published.id, 'failed');
    expect(d.attemptCount).toBe(1);
    expect(d.lastError).toMatch(/^endpoint disabled: automatic: every attempt failed since/);
    const endpoint = await s.json('GET', `/v1/webhook-endpoints/${ep.id}`);
    expect(endpoint).toMatchObject({ enabled: false, disabledReason: expect.stringContaining(`failed since ${since.toISOString()} (5 days); last error: receiver answered HTTP 500`) });

    // Re-enabling clears the reason and the streak.
    const reenabled = await s.json('PATCH', `/v1/webhook-endpoints/${ep.id}`, { enabled: true });
    expect(reenabled).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null, failingSince: null });
  });

  it('a failure starts the streak (failingSince) and a success ends it', async () => {
    const rx = await receiver();
    rx.script({ status: 500 });
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['failing.short'] });
    rx.setDefault({ status: 500 });
    const published = await s.publish('failing.short');
    await rx.waitFor(1);
    const streak = await eventually(async () => (await s.json('GET', `/v1/webhook-endpoints/${ep.id}`)).failingSince ?? undefined, 'failingSince to be set');
    expect(Date.parse(streak)).toBeGreaterThan(Date.now() - 10_000);
    rx.setDefault({ status: 204 });
    await settled(published.id, 'delivered');
    // The streak ends before the delivery shows delivered (the processor writes the endpoint first).
    expect((await s.json('GET', `/v1/webhook-endpoints/${ep.id}`)).failingSince).toBeNull();
  });
});

describe('an unreadable secret', () => {
  it('(ENCRYPTION_KEY changed) fails the delivery at once with what to do, and sends nothing', async () => {
    const rx = await receiver();
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['secret.unreadable'] });
    const otherKey = createSecretBox(randomBytes(32)).encrypt(generateSecret(), ep.id);
    await s.t.db.webhookEndpoint.update({ where: { id: ep.id }, data: { secretEncrypted: otherKey } });
    const published = await s.publish('secret.unreadable');
    const d = await settled(published.id, 'failed');
    expect(d.attemptCount).toBe(0);
    expect(d.lastError).toBe("endpoint secret: cannot decrypt (was ENCRYPTION_KEY changed?); rotate the endpoint's secret, then retry");
    expect(rx.count()).toBe(0);

    // Doing what it says works at once: the unreadable secret is not kept to sign alongside the new one.
    const rotated = await s.json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`);
    expect(rotated).toEqual({ signatureScheme: 'hmac-sha256', secret: expect.stringMatching(/^whsec_/), previousSecretExpiresAt: null });
    await s.json('POST', `/v1/webhook-deliveries/${d.id}/retry`);
    const [req] = await rx.waitFor(1);
    expect(req.headers['webhook-signature'].split(' ')).toHaveLength(1);
    expect(new Webhook(rotated.secret).verify(req.body, req.headers)).toBeDefined();
    await settled(published.id, 'delivered');
  });
});

describe('fan-out', () => {
  it('an event reaches exactly the 3 of 5 endpoints subscribed to its type; a disabled one gets nothing', async () => {
    const rxs = await Promise.all([1, 2, 3, 4, 5].map(() => receiver()));
    const types = [['fan.out'], ['fan.other', 'fan.out'], [], ['fan.other'], ['fan.unrelated']];
    const eps = [];
    for (const [i, eventTypes] of types.entries()) eps.push(await s.createEndpoint({ url: rxs[i].url, eventTypes }));
    try {
      const first = await s.publish('fan.out', { round: 1 });
      expect(first.deliveries).toBe(3);
      await Promise.all([0, 1, 2].map((i) => rxs[i].waitFor(1)));
      const allDelivered = (id: string) => async () => {
        const v = await event(id);
        return v.deliveries.every((d) => d.status === 'delivered') ? v : undefined;
      };
      const e = await eventually(allDelivered(first.id), 'round 1 delivered');
      expect(e.deliveries.map((d) => d.endpointId).sort()).toEqual([eps[0].id, eps[1].id, eps[2].id].sort());

      await s.json('PATCH', `/v1/webhook-endpoints/${eps[1].id}`, { enabled: false });
      const second = await s.publish('fan.out', { round: 2 });
      expect(second.deliveries).toBe(2);
      // Both deliveries of round 2 recorded, and no job left of either round: nothing more can come.
      const deliveries = (await eventually(allDelivered(second.id), 'round 2 delivered')).deliveries;
      await jobsFinished(s.publisher().queues, 'webhook', [...e.deliveries, ...deliveries].map((d) => d.id));
      expect(rxs.map((r) => r.count())).toEqual([2, 1, 2, 0, 0]);
      expect(JSON.parse(rxs[0].requests[1].body).data).toEqual({ round: 2 });
    } finally {
      // The catch-all endpoint must not see the other tests' events.
      for (const ep of eps) await s.call('DELETE', `/v1/webhook-endpoints/${ep.id}`);
    }
  });

  it('email lifecycle events go through the same fan-out (recordEvent in the caller transaction)', async () => {
    const rx = await receiver();
    const ep = await s.createEndpoint({ url: rx.url, eventTypes: ['email.sent'] });
    const recorded = await s.t.db.$transaction((tx) => recordEvent(tx, { applicationId: DEFAULT_APPLICATION_ID, type: 'email.sent', payload: { emailId: 'e-1', status: 'sent' } }));
    expect(recorded.deliveryIds).toHaveLength(1);
    expect(await s.publisher().jobs.enqueue('webhook', recorded.deliveryIds)).toBe(true);
    const [req] = await rx.waitFor(1);
    expect(new Webhook(ep.secret).verify(req.body, req.headers)).toMatchObject({ type: 'email.sent', data: { emailId: 'e-1' } });
  });
});

describe('manual retry', () => {
  it('re-attempts a failed delivery now, continuing its attempt numbers, and re-sends a delivered one', async () => {
    const rx = await receiver({ answer: { status: 500 } });
    await s.createEndpoint({ url: rx.url, eventTypes: ['retry.manual'] });
    const published = await s.publish('retry.manual');
    const failed = await settled(published.id, 'failed');
    expect(failed.attemptCount).toBe(5);

    rx.setDefault({ status: 200 });
    const res = await s.call('POST', `/v1/webhook-deliveries/${failed.id}/retry`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: failed.id, status: 'pending' });
    const delivered = await settled(published.id, 'delivered');
    expect(delivered.attempts.map((a) => a.number)).toEqual([1, 2, 3, 4, 5, 6]);

    await s.json('POST', `/v1/webhook-deliveries/${failed.id}/retry`);
    await rx.waitFor(7);
    const again = await eventually(async () => {
      const d = (await event(published.id)).deliveries[0];
      return d.attemptCount === 7 && d.status === 'delivered' ? d : undefined;
    }, 'the seventh attempt recorded');
    expect(again.attempts[6].statusCode).toBe(200);
    expect(rx.requests[6].headers['webhook-id']).toBe(failed.id);
  });
});

describe('POST /v1/events with Idempotency-Key', () => {
  it('replays the first answer for the same key and body, refuses another body, and stores one event', async () => {
    const rx = await receiver();
    await s.createEndpoint({ url: rx.url, eventTypes: ['idem.test'] });
    const headers = { 'idempotency-key': 'order-42-paid' };
    const first = await s.call('POST', '/v1/events', { type: 'idem.test', payload: { order: 42 } }, headers);
    expect(first.status).toBe(202);
    const body = first.body;
    const again = await s.call('POST', '/v1/events', { payload: { order: 42 }, type: 'idem.test' }, headers);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(body);
    const other = await s.call('POST', '/v1/events', { type: 'idem.test', payload: { order: 43 } }, headers);
    expect(other.status).toBe(409);
    expect(other.headers.get('content-type')).toMatch(/problem\+json/);
    expect(await s.t.db.event.count({ where: { type: 'idem.test' } })).toBe(1);
    // The one delivery recorded and its job ended: the replay and the refused request sent nothing.
    const delivery = await settled(body.id, 'delivered');
    await jobsFinished(s.publisher().queues, 'webhook', [delivery.id]);
    expect(rx.count()).toBe(1);
  });
});

describe('metrics', () => {
  it('the worker exposes deliveries by outcome, attempt latency and disabled endpoints', async () => {
    const text = await (await fetch(`http://127.0.0.1:${s.workerPort}/metrics`)).text();
    /** The sample of `metric` whose labels include `label` (label order is not fixed). */
    const value = (metric: string, label: string) => Number(new RegExp(`^${metric}\\{[^}]*${label}[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    expect(value('easeemail_webhook_deliveries_total', 'outcome="delivered"')).toBeGreaterThan(0);
    expect(value('easeemail_webhook_deliveries_total', 'outcome="retry_scheduled"')).toBeGreaterThan(0);
    expect(value('easeemail_webhook_deliveries_total', 'outcome="failed"')).toBeGreaterThan(0);
    expect(value('easeemail_webhook_attempt_duration_seconds_count', 'result="success"')).toBeGreaterThan(0);
    expect(value('easeemail_webhook_attempt_duration_seconds_count', 'result="timeout"')).toBeGreaterThan(0);
    expect(value('easeemail_webhook_endpoints_disabled', 'by="automatic"')).toBeGreaterThanOrEqual(1);
  });
});
