/**
 * Accepting, reading and cancelling emails. Accepting is the hot path: one INSERT shared with
 * concurrent requests (store.ts), then one coalesced enqueue (queue/producer.ts). Templates
 * are rendered here, at accept time, so the stored email is exactly what will be sent: a rendered
 * subject is checked for header injection and missing variables are a 422 now, not a failed
 * delivery later, and editing a template does not change emails already accepted.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { Db, Prisma } from '../db/client';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import type { EmailStatus } from '../generated/prisma/client';
import type { IdempotencyClaim, Idempotency } from '../http/idempotency';
import { renderEmailTemplate, type TemplateRef, type TemplateService } from '../templates';
import type { JobProducer } from '../queue/producer';
import { recordEvent } from '../webhooks';
import { emailEventPayload } from './events';
import { decodeCursor, encodeCursor } from '../shared/cursor';
import type { ApplicationContext } from '../shared/application';
import { mailboxAddress } from '../shared/mailbox';
import { base64DecodedBytes, type SendEmailInput } from './schemas';
import type { EmailAcceptMetrics } from './metrics';
import { createEmailWriter, type NewEmailRow, type StoredAttachment } from './store';

export interface AcceptedEmail {
  id: string;
  status: 'queued' | 'scheduled';
}

export interface AcceptOptions {
  /** The caller's application: its id goes on every row, its settings give the default sender and the allowed sender domains. */
  application: ApplicationContext;
  apiKeyId: string;
  idempotency?: IdempotencyClaim;
}

function toIso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

/** Emails are listed by (createdAt, id): the cursor is the last row's `<ISO time>|<id>`. */
function emailCursor(createdAt: Date, id: string): string {
  return encodeCursor(`${createdAt.toISOString()}|${id}`);
}

function emailCursorPosition(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = decodeCursor(cursor, (text) => {
    const [iso, id, extra] = text.split('|');
    const at = new Date(iso ?? '');
    return extra === undefined && id !== undefined && /^[0-9a-f-]{36}$/.test(id) && !Number.isNaN(at.getTime()) && at.toISOString() === iso;
  }).split('|');
  return { createdAt: new Date(iso), id };
}

/** A domain from the list, or a subdomain of one (`mail.example.com` for `example.com`). */
function senderDomainAllowed(from: string, allowed: string[]): boolean {
  const domain = (mailboxAddress(from).split('@')[1] ?? '').toLowerCase();
  return allowed.some((d) => domain === d || domain.endsWith(`.${d}`));
}

/** Message-ID on the sender's domain: stable across retries, so receivers can drop duplicates. */
function messageIdFor(id: string, from: string): string {
  const domain = mailboxAddress(from).split('@')[1] ?? 'localhost';
  return `<${id}@${domain}>`;
}

export function createEmailService(deps: {
  db: Db;
  jobs: JobProducer;
  mailFrom: string;
  templates: Pick<TemplateService, 'resolve'>;
  idempotency: Pick<Idempotency, 'recordInput'>;
  metrics?: EmailAcceptMetrics;
  /** The api's statement pool for the accepting INSERT (store.ts); without one it goes through Prisma. */
  pool?: Pick<Pool, 'query'>;
}) {
  const { db, jobs, templates, idempotency } = deps;
  const writer = createEmailWriter({ db, pool: deps.pool, jobs });

  /** Builds the rows for validated input (templates rendered); `paths` prefix error paths per email. */
  async function buildRows(inputs: SendEmailInput[], { application, apiKeyId }: AcceptOptions, paths: string[]) {
    const applicationId = application.id;
    const { defaultFrom, allowedSenderDomains } = application.settings;
    if (allowedSenderDomains.length > 0) {
      const refused = inputs.flatMap((e, i) => (senderDomainAllowed(e.from ?? defaultFrom ?? deps.mailFrom, allowedSenderDomains) ? [] : [{ path: `${paths[i]}/from`, message: `the sender's domain must be one of ${allowedSenderDomains.join(', ')} (application "${application.name}")` }]));
      if (refused.length > 0) throw new ValidationError(`sender not allowed for application "${application.name}": ${refused[0].path}: ${refused[0].message}`, refused);
    }
    const refs = inputs.flatMap((e, i) => (e.template ? [{ ref: (e.template.id !== undefined ? { id: e.template.id } : { name: e.template.name! }) as TemplateRef, path: `${paths[i]}/template`, index: i }] : []));
    const compiled = refs.length > 0 ? await templates.resolve(applicationId, refs) : [];
    const now = new Date();
    const nowMs = now.getTime();
    const accepted: AcceptedEmail[] = [];
    const delays: number[] = [];
    const rows: NewEmailRow[] = inputs.map((e, i) => {
      const id = randomUUID();
      let content = { subject: e.subject ?? '', text: e.text ?? null, html: e.html ?? null };
      let templateId: string | null = null;
      if (e.template) {
        const t = compiled[refs.findIndex((r) => r.index === i)];
        content = renderEmailTemplate(t, e.template.data, `${paths[i]}/template/data`);
        templateId = t.id;
      }
      const scheduledAt = e.scheduledAt !== undefined ? new Date(e.scheduledAt) : null;
      const delayMs = scheduledAt ? scheduledAt.getTime() - nowMs : 0;
      const status = delayMs > 0 ? 'scheduled' : 'queued';
      const from = e.from ?? defaultFrom ?? deps.mailFrom;
      accepted.push({ id, status });
      delays.push(delayMs);
      return {
        id,
        applicationId,
        apiKeyId,
        status,
        from,
        to: e.to,
        cc: e.cc ?? [],
        bcc: e.bcc ?? [],
        replyTo: e.replyTo ?? [],
        ...content,
        templateId,
        templateData: e.template ? e.template.data : null,
        headers: e.headers ?? null,
        attachments: e.attachments ?? null,
        tags: e.tags ?? [],
        metadata: e.metadata ?? null,
        messageId: messageIdFor(id, from),
        scheduledAt,
        attemptCount: 0,
        deliveryBatchId: null,
        createdAt: now,
        updatedAt: now,
      };
    });
    return { rows, accepted, delays };
  }

  async function store(rows: NewEmailRow[], status: number, body: Prisma.InputJsonValue, opts: AcceptOptions) {
    try {
      if (opts.idempotency) {
        await writer.insertWith(rows, [db.idempotencyRecord.createMany({ data: [idempotency.recordInput(opts.idempotency, status, body)] })]);
      } else {
        await writer.insert(rows);
      }
    } catch (err) {
      // The template was deleted between rendering and storing: nothing was stored, say so.
      if (/emails_templateId_fkey/.test(String((err as Error)?.message))) {
        throw new ConflictError('the template was deleted while the email was being accepted; nothing was stored');
      }
      throw err;
    }
  }

  /**
   * Jobs of their own for the rows the writer did not put on a batch job (store.ts): scheduled
   * ones (delayed, one enqueue per distinct delay) and a lone due one. The producer sends them in
   * one addBulk, shared with concurrent requests.
   */
  async function enqueueSingles(rows: NewEmailRow[], delays: number[]) {
    const byDelay = new Map<number, string[]>();
    rows.forEach((row, i) => {
      if (row.deliveryBatchId !== null) return;
      const delayMs = Math.max(0, delays[i]);
      const ids = byDelay.get(delayMs);
      if (ids) ids.push(row.id);
      else byDelay.set(delayMs, [row.id]);
    });
    await Promise.all([...byDelay].map(([delayMs, ids]) => jobs.enqueueDetached('email', ids, { delayMs })));
  }

  /** Commits, then enqueues without waiting for Redis (outbox rule: the answer depends on the commit only). */
  async function acceptMany(inputs: SendEmailInput[], opts: AcceptOptions, paths: string[], respond: (accepted: AcceptedEmail[]) => Prisma.InputJsonValue) {
    const { rows, accepted, delays } = await buildRows(inputs, opts, paths);
    const body = respond(accepted);
    await store(rows, 202, body, opts);
    deps.metrics?.accepted.inc({ application: opts.application.id }, rows.length);
    await enqueueSingles(rows, delays);
    return { status: 202, body };
  }

  function accept(input: SendEmailInput, opts: AcceptOptions) {
    return acceptMany([input], opts, [''], ([a]) => ({ id: a.id, status: a.status }));
  }

  function acceptBatch(inputs: SendEmailInput[], opts: AcceptOptions) {
    return acceptMany(
      inputs,
      opts,
      inputs.map((_, i) => `/${i}`),
      (accepted) => ({ data: accepted.map((a) => ({ id: a.id, status: a.status })) }),
    );
  }

  async function get(applicationId: string, id: string) {
    const e = await db.email.findUnique({ where: { id, applicationId }, include: { attempts: { orderBy: { number: 'asc' } }, reports: { orderBy: { receivedAt: 'asc' } } } });
    if (!e) throw new NotFoundError(`no email ${id}`);
    const attachments = ((e.attachments ?? []) as unknown as StoredAttachment[]).map((a) => ({
      filename: a.filename,
      contentType: a.contentType ?? null,
      size: base64DecodedBytes(a.content),
    }));
    return {
      id: e.id,
      status: e.status,
      from: e.from,
      to: e.to,
      cc: e.cc,
      bcc: e.bcc,
      replyTo: e.replyTo,
      subject: e.subject,
      text: e.text,
      html: e.html,
      templateId: e.templateId,
      headers: e.headers as Record<string, string> | null,
      attachments,
      tags: e.tags,
      metadata: e.metadata as Record<string, string> | null,
      messageId: e.messageId,
      scheduledAt: toIso(e.scheduledAt),
      attemptCount: e.attemptCount,
      lastError: e.lastError,
      createdAt: e.createdAt.toISOString(),
      updatedAt: e.updatedAt.toISOString(),
      sentAt: toIso(e.sentAt),
      failedAt: toIso(e.failedAt),
      cancelledAt: toIso(e.cancelledAt),
      attempts: [
        ...e.attempts.map((a) => ({
          number: a.number,
          startedAt: a.startedAt.toISOString(),
          finishedAt: toIso(a.finishedAt),
          outcome: a.outcome,
          smtpResponse: a.smtpResponse,
          error: a.error,
          suppressedRecipients: a.suppressedRecipients,
        })),
        ...runningAttempt(e),
      ],
      // What came back after sending (inbound role): bounces, delays, complaints, in arrival order.
      reports: e.reports.map((r) => ({ kind: r.kind, recipient: r.recipient, status: r.status, diagnostic: r.diagnostic, receivedAt: r.receivedAt.toISOString() })),
    };
  }

  /** Newest first; keyset pagination on (createdAt, id) within the application: the emails_applicationId_createdAt_id index. */
  async function list(applicationId: string, query: { status?: EmailStatus; tag?: string; limit: number; cursor?: string }) {
    const after = query.cursor !== undefined ? emailCursorPosition(query.cursor) : undefined;
    const rows = await db.email.findMany({
      where: {
        applicationId,
        ...(query.status ? { status: query.status } : {}),
        ...(query.tag ? { tags: { has: query.tag } } : {}),
        ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: query.limit + 1,
      select: { id: true, status: true, from: true, to: true, subject: true, tags: true, scheduledAt: true, createdAt: true, sentAt: true },
    });
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      data: page.map((r) => ({ ...r, scheduledAt: toIso(r.scheduledAt), createdAt: r.createdAt.toISOString(), sentAt: toIso(r.sentAt) })),
      nextCursor: rows.length > query.limit ? emailCursor(last.createdAt, last.id) : null,
    };
  }

  /**
   * Cancels a queued or scheduled email. The status change is a compare-and-set, so against a
   * worker claiming the email (queued → sending) exactly one of the two wins.
   */
  async function cancel(applicationId: string, id: string, apiKeyId: string): Promise<{ id: string; status: 'cancelled' }> {
    const now = new Date();
    const deliveryIds = await db.$transaction(async (tx) => {
      const rows = await tx.email.updateManyAndReturn({
        where: { id, applicationId, status: { in: ['queued', 'scheduled'] } },
        data: { status: 'cancelled', cancelledAt: now, updatedAt: now },
      });
      if (rows.length === 0) return undefined;
      const event = await recordEvent(tx, { applicationId, type: 'email.cancelled', payload: emailEventPayload(rows[0], 'cancelled', now), apiKeyId });
      return event.deliveryIds;
    });
    if (deliveryIds === undefined) {
      const row = await db.email.findUnique({ where: { id, applicationId }, select: { status: true } });
      if (!row) throw new NotFoundError(`no email ${id}`);
      throw new ConflictError(`email ${id} is ${row.status}; only queued or scheduled emails can be cancelled`);
    }
    await jobs.enqueue('webhook', deliveryIds);
    // The job would find the row cancelled and skip it; removing it just saves the worker a look.
    await jobs.discard('email', id);
    return { id, status: 'cancelled' };
  }

  return { accept, acceptBatch, get, list, cancel };
}

export type EmailService = ReturnType<typeof createEmailService>;

/**
 * The attempt under way, which has no row yet (the worker writes it when the attempt ends,
 * email/delivery-statements.ts): the email row is `sending`, counts it, and was updated when it
 * was claimed.
 */
function runningAttempt(e: { status: EmailStatus; attemptCount: number; updatedAt: Date; attempts: { number: number }[] }) {
  if (e.status !== 'sending' || e.attempts.some((a) => a.number === e.attemptCount)) return [];
  return [{ number: e.attemptCount, startedAt: e.updatedAt.toISOString(), finishedAt: null, outcome: null, smtpResponse: null, error: null, suppressedRecipients: [] }];
}
