/** Every Prisma model written and read back through the generated client on a migrated schema. */
import { DEFAULT_APPLICATION_ID } from '../../app/applications/default';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';

let t: TestEnvironment;
beforeAll(async () => {
  t = await createTestEnvironment('models');
});
afterAll(() => t?.cleanup());

it('writes and reads every model, with relations, arrays, JSON and enums', async () => {
  const { db } = t;
  const key = await db.apiKey.create({ data: { name: 'k', prefix: 'ee_abc', keyHash: 'h'.repeat(64), scopes: ['emails:send', 'admin'] } });
  const template = await db.template.create({ data: { name: 'welcome', subject: 'Hi {{name}}', html: '<p>{{name}}</p>', text: '{{name}}' } });
  const email = await db.email.create({
    data: {
      apiKeyId: key.id,
      status: 'scheduled',
      from: 'a@example.com',
      to: ['b@example.com', 'c@example.com'],
      cc: [],
      bcc: ['d@example.com'],
      replyTo: [],
      subject: 's',
      templateId: template.id,
      templateData: { name: 'Ann', nested: { n: 1 } },
      headers: { 'X-Campaign': 'c1' },
      attachments: [{ filename: 'a.txt', content: 'aGk=' }],
      tags: ['welcome', 'beta'],
      metadata: { userId: 42 },
      scheduledAt: new Date(Date.now() + 60_000),
      attempts: { create: [{ number: 1, startedAt: new Date(), outcome: 'retry', smtpResponse: '421 busy' }] },
    },
  });
  const endpoint = await db.webhookEndpoint.create({ data: { url: 'https://example.com/hook', eventTypes: ['email.sent'], secretEncrypted: 'x' } });
  const event = await db.event.create({ data: { type: 'email.sent', payload: { emailId: email.id } } });
  const delivery = await db.webhookDelivery.create({
    data: { eventId: event.id, endpointId: endpoint.id, attempts: { create: [{ number: 1, startedAt: new Date(), durationMs: 12, statusCode: 500, responseBody: 'oops' }] } },
  });
  await db.idempotencyRecord.create({
    data: { apiKeyId: key.id, key: 'idem-1', scope: 'POST /v1/emails', requestHash: 'r', responseStatus: 202, responseBody: { id: email.id }, expiresAt: new Date(Date.now() + 86_400_000) },
  });

  const readEmail = await db.email.findUniqueOrThrow({ where: { id: email.id }, include: { attempts: true, template: true } });
  expect(readEmail).toMatchObject({ status: 'scheduled', to: ['b@example.com', 'c@example.com'], tags: ['welcome', 'beta'], templateData: { name: 'Ann', nested: { n: 1 } }, template: { name: 'welcome' } });
  expect(readEmail.attempts).toEqual([expect.objectContaining({ number: 1, outcome: 'retry', smtpResponse: '421 busy' })]);
  expect(await db.email.count({ where: { tags: { has: 'beta' } } })).toBe(1);

  const readDelivery = await db.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id }, include: { attempts: true, event: true, endpoint: true } });
  expect(readDelivery).toMatchObject({ status: 'pending', attemptCount: 0, event: { type: 'email.sent' }, endpoint: { eventTypes: ['email.sent'], enabled: true } });
  expect(readDelivery.attempts[0]).toMatchObject({ statusCode: 500, durationMs: 12 });
  expect(await db.idempotencyRecord.findUnique({ where: { applicationId_apiKeyId_scope_key: { applicationId: DEFAULT_APPLICATION_ID, apiKeyId: key.id, scope: 'POST /v1/emails', key: 'idem-1' } } })).toMatchObject({ responseStatus: 202 });
  expect(await db.apiKey.findUnique({ where: { keyHash: 'h'.repeat(64) } })).toMatchObject({ scopes: ['emails:send', 'admin'] });

  // Unique constraints the product relies on.
  await expect(db.template.create({ data: { name: 'welcome', subject: 'dup' } })).rejects.toThrow();
  await expect(db.emailAttempt.create({ data: { emailId: email.id, number: 1, startedAt: new Date() } })).rejects.toThrow();
  // Cascades: deleting an endpoint removes its deliveries and their attempts.
  await db.webhookEndpoint.delete({ where: { id: endpoint.id } });
  expect(await db.webhookAttempt.count()).toBe(0);
});
