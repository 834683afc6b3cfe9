/**
 * Retention on a real schema: events older than RETENTION_DAYS go with their deliveries and
 * attempts, in bounded batches; old finished emails keep their row, recipients and attempts and
 * lose bodies, template data and attachments; newer rows and unfinished emails are untouched;
 * inbound messages kept for inspection go under their application's period (RETENTION_DAYS for
 * those that name none) while delivery reports stay on the email's timeline; the metric counts
 * what was deleted.
 */
import { Registry } from 'prom-client';
import { DEFAULT_APPLICATION_ID } from '../../app/applications/default';
import { createRetentionMetrics, createRetentionSweep } from '../../app/retention/sweep';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';

let t: TestEnvironment;
beforeAll(async () => {
  t = await createTestEnvironment('retention');
});
afterAll(() => t?.cleanup());

const DAY = 24 * 3600_000;

async function eventWithHistory(createdAt: Date, endpointId: string, attempts: number) {
  return t.db.event.create({
    data: {
      type: 'ret.test',
      payload: { at: createdAt.toISOString() },
      createdAt,
      deliveries: {
        create: [{ endpointId, createdAt, status: 'delivered', attempts: { create: Array.from({ length: attempts }, (_, i) => ({ number: i + 1, startedAt: createdAt, durationMs: 5 })) } }],
      },
    },
  });
}

async function email(createdAt: Date, status: 'sent' | 'queued' | 'bounced' | 'suppressed') {
  return t.db.email.create({
    data: {
      status, from: 'a@example.com', to: ['b@example.com'], cc: [], bcc: [], replyTo: [], subject: 'kept', text: 'body', html: '<p>body</p>',
      templateData: { name: 'Ann' }, attachments: [{ filename: 'a.txt', content: 'aGk=' }], tags: ['t'], metadata: { k: 'v' }, createdAt,
      attempts: { create: [{ number: 1, startedAt: createdAt, outcome: 'sent', smtpResponse: '250 ok' }] },
    },
  });
}

it('deletes old events with their deliveries and attempts and drops old email bodies, in bounded batches', async () => {
  const endpoint = await t.db.webhookEndpoint.create({ data: { url: 'https://example.com/hook', eventTypes: [], secretEncrypted: 'x' } });
  const old = new Date(Date.now() - 40 * DAY);
  const recent = new Date(Date.now() - 5 * DAY);
  for (let i = 0; i < 25; i++) await eventWithHistory(new Date(old.getTime() + i), endpoint.id, 3);
  const keptEvent = await eventWithHistory(recent, endpoint.id, 2);
  const oldSent = await email(old, 'sent');
  const oldQueued = await email(old, 'queued');
  // Finished too, since deliverability: every recipient hard-bounced, or none left to send to.
  const oldBounced = await email(old, 'bounced');
  const oldSuppressed = await email(old, 'suppressed');
  const recentSent = await email(recent, 'sent');

  const registry = new Registry();
  const metrics = createRetentionMetrics(registry);
  // No time budget: one batch of each kind per run, so the bound is visible.
  const bounded = createRetentionSweep({ db: t.db, retentionDays: 30, batch: 10, pauseMs: 1, runBudgetMs: 0, metrics });
  expect(await bounded.run()).toBe(10 + 10 + 30 + 3);
  expect(await t.db.event.count()).toBe(16);

  const sweep = createRetentionSweep({ db: t.db, retentionDays: 30, batch: 10, pauseMs: 1, metrics });
  expect(await sweep.run()).toBe(15 * 5);
  expect(await sweep.run()).toBe(0);

  expect((await t.db.event.findMany({ select: { id: true } })).map((e) => e.id)).toEqual([keptEvent.id]);
  expect(await t.db.webhookDelivery.count()).toBe(1);
  expect(await t.db.webhookAttempt.count()).toBe(2);

  const stripped = await t.db.email.findUniqueOrThrow({ where: { id: oldSent.id }, include: { attempts: true } });
  expect(stripped).toMatchObject({ status: 'sent', to: ['b@example.com'], subject: 'kept', text: null, html: null, attachments: null, templateData: null, metadata: { k: 'v' } });
  expect(stripped.attempts).toHaveLength(1);
  for (const id of [oldBounced.id, oldSuppressed.id]) {
    expect(await t.db.email.findUniqueOrThrow({ where: { id } })).toMatchObject({ subject: 'kept', text: null, html: null, attachments: null, templateData: null });
  }
  for (const id of [oldQueued.id, recentSent.id]) {
    expect(await t.db.email.findUniqueOrThrow({ where: { id } })).toMatchObject({ text: 'body', html: '<p>body</p>', templateData: { name: 'Ann' } });
  }

  const text = await registry.metrics();
  expect(text).toContain('easeemail_retention_rows_deleted_total{table="events"} 25');
  expect(text).toContain('easeemail_retention_rows_deleted_total{table="webhook_deliveries"} 25');
  expect(text).toContain('easeemail_retention_rows_deleted_total{table="webhook_attempts"} 75');
  expect(text).toContain('easeemail_retention_email_bodies_dropped_total 3');
});

it("an application's own retentionDays replaces RETENTION_DAYS for its rows", async () => {
  const app = await t.db.application.create({ data: { name: `short-${Date.now()}`, retentionDays: 3 } });
  const endpoint = await t.db.webhookEndpoint.create({ data: { applicationId: app.id, url: 'https://example.com/short', eventTypes: [], secretEncrypted: 'x' } });
  const fiveDays = new Date(Date.now() - 5 * DAY);
  const short = await t.db.event.create({ data: { applicationId: app.id, type: 'ret.short', payload: {}, createdAt: fiveDays } });
  await t.db.webhookDelivery.create({ data: { applicationId: app.id, eventId: short.id, endpointId: endpoint.id, createdAt: fiveDays } });
  const defaultApp = await eventWithHistory(fiveDays, endpoint.id, 1);
  await createRetentionSweep({ db: t.db, retentionDays: 30, pauseMs: 1 }).run();
  expect(await t.db.event.findUnique({ where: { id: short.id } })).toBeNull();
  expect(await t.db.event.findUnique({ where: { id: defaultApp.id } })).not.toBeNull();
});

async function inboundMessage(receivedAt: Date, applicationId: string | null) {
  return t.db.inboundMessage.create({
    data: { applicationId, reason: 'auto_reply', detail: 'out of office', mailFrom: 'mailer-daemon@example.net', rcptTo: ['bounces+x.y@bounces.example.com'], size: 40, sample: 'Subject: Out of office\r\n\r\nBack Monday.', receivedAt },
  });
}

it('deletes old inbound messages under their application\'s period, those naming none under RETENTION_DAYS; delivery reports stay', async () => {
  const short = await t.db.application.create({ data: { name: `inbound-short-${Date.now()}`, retentionDays: 3 } });
  const old = new Date(Date.now() - 40 * DAY);
  const fiveDays = new Date(Date.now() - 5 * DAY);
  const recent = new Date(Date.now() - DAY);
  for (let i = 0; i < 12; i++) await inboundMessage(new Date(old.getTime() + i), DEFAULT_APPLICATION_ID);
  for (let i = 0; i < 3; i++) await inboundMessage(new Date(old.getTime() + i), null);
  const kept = [
    await inboundMessage(fiveDays, DEFAULT_APPLICATION_ID), // RETENTION_DAYS (30)
    await inboundMessage(fiveDays, null), // RETENTION_DAYS too
    await inboundMessage(recent, short.id), // its own 3 days
  ];
  const shortExpired = await inboundMessage(fiveDays, short.id);
  const bounced = await email(old, 'sent');
  const report = await t.db.emailReport.create({
    data: { applicationId: DEFAULT_APPLICATION_ID, emailId: bounced.id, kind: 'hard_bounce', recipient: 'b@example.com', status: '5.1.1', diagnostic: '550 5.1.1 no such user', dedupeKey: 'hard_bounce:b@example.com', receivedAt: old },
  });

  const registry = new Registry();
  const metrics = createRetentionMetrics(registry);
  // One batch per kind per run: the oldest application (`default`) first, 5 of its 12.
  expect(await createRetentionSweep({ db: t.db, retentionDays: 30, batch: 5, pauseMs: 1, runBudgetMs: 0, metrics }).run()).toBe(1 + 5);
  expect(await t.db.inboundMessage.count()).toBe(12 + 3 + 4 - 5);

  const sweep = createRetentionSweep({ db: t.db, retentionDays: 30, batch: 5, pauseMs: 1, metrics });
  expect(await sweep.run()).toBe(7 + 1 + 3);
  expect(await sweep.run()).toBe(0);
  expect((await t.db.inboundMessage.findMany({ select: { id: true } })).map((m) => m.id).sort()).toEqual(kept.map((m) => m.id).sort());
  expect(await t.db.inboundMessage.findUnique({ where: { id: shortExpired.id } })).toBeNull();

  expect(await t.db.emailReport.findUnique({ where: { id: report.id } })).toMatchObject({ kind: 'hard_bounce', diagnostic: '550 5.1.1 no such user' });
  expect(await t.db.email.findUniqueOrThrow({ where: { id: bounced.id } })).toMatchObject({ status: 'sent', text: null });
  expect(await registry.metrics()).toContain('easeemail_retention_rows_deleted_total{table="inbound_messages"} 16');
});
