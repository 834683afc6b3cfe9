/**
 * Request and response shapes of /v1/emails, shaped like Resend's and Postmark's APIs. The same
 * zod schemas validate the requests and generate the OpenAPI document.
 */
import { z } from 'zod';
import { decimalInt } from '../shared/text';
import { templateData, templateName } from '../templates';
import { headerText } from '../shared/headers';
import { mailbox, mailboxList } from './fields';
import { EMAIL_LIMITS } from './limits';

export const EMAIL_STATUSES = ['scheduled', 'queued', 'sending', 'sent', 'failed', 'cancelled', 'bounced', 'suppressed'] as const;
export const emailStatus = z.enum(EMAIL_STATUSES).meta({ id: 'EmailStatus' });

/** Headers the API sets itself; a caller gives these through their own fields or not at all. */
const RESERVED_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'reply-to', 'subject', 'sender', 'date', 'message-id', 'mime-version',
  'content-type', 'content-transfer-encoding', 'return-path', 'received',
]);

const HEADER_NAME = /^[!-9;-~]{1,76}$/;

// A character class, not a repeated group: large attachments must not make the regex recurse.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

function isBase64(v: string): boolean {
  return v.length % 4 === 0 && BASE64_CHARS.test(v);
}

/** Decoded size of valid base64 without decoding it. */
export function base64DecodedBytes(b64: string): number {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - padding;
}

const attachment = z.strictObject({
  filename: headerText(EMAIL_LIMITS.filenameLength).min(1).regex(/^[^/\\]*$/, 'must be a file name, not a path').meta({ example: 'invoice.pdf' }),
  content: z
    .string()
    .refine(isBase64, 'must be standard base64 (RFC 4648, padded, no line breaks)')
    .meta({ description: 'File content, base64', contentEncoding: 'base64' }),
  contentType: z
    .string()
    .regex(/^[A-Za-z0-9][\w.+-]*\/[A-Za-z0-9][\w.+-]*$/, 'must be a MIME type such as application/pdf')
    .optional()
    .meta({ description: 'Guessed from the file name when absent' }),
});

const templateRef = z
  .strictObject({
    id: z.uuid().optional(),
    name: templateName.optional(),
    data: templateData.default({}),
  })
  .refine((t) => (t.id === undefined) !== (t.name === undefined), { message: 'give exactly one of id and name' })
  .meta({ id: 'TemplateReference' });

export const sendEmailSchema = z
  .strictObject({
    from: mailbox.optional().meta({ description: 'Defaults to MAIL_FROM' }),
    to: mailboxList(EMAIL_LIMITS.recipients, true),
    cc: mailboxList(EMAIL_LIMITS.recipients, false).optional(),
    bcc: mailboxList(EMAIL_LIMITS.recipients, false).optional(),
    replyTo: mailboxList(EMAIL_LIMITS.replyTo, false).optional(),
    subject: headerText(EMAIL_LIMITS.subjectLength).min(1).optional().meta({ description: 'Required unless a template is used' }),
    text: z.string().optional(),
    html: z.string().optional(),
    template: templateRef.optional(),
    headers: z
      .record(z.string(), headerText(EMAIL_LIMITS.headerValueLength))
      .superRefine((h, ctx) => {
        const names = Object.keys(h);
        if (names.length > EMAIL_LIMITS.headers) ctx.addIssue({ code: 'custom', message: `at most ${EMAIL_LIMITS.headers} headers` });
        for (const name of names) {
          if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'a header name is 1 to 76 visible ASCII characters without ":"' });
          else if (RESERVED_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [name], message: 'is set by the API (use the matching field, e.g. subject, replyTo)' });
        }
      })
      .optional()
      .meta({ example: { 'X-Entity-Ref-ID': '123' } }),
    attachments: z.array(attachment).max(EMAIL_LIMITS.attachments, `at most ${EMAIL_LIMITS.attachments} attachments`).optional(),
    tags: z
      .array(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - (1 to 64)'))
      .max(EMAIL_LIMITS.tags, `at most ${EMAIL_LIMITS.tags} tags`)
      .optional(),
    metadata: z
      .record(z.string().min(1).max(64), z.string().max(EMAIL_LIMITS.metadataValueLength))
      .refine((m) => Object.keys(m).length <= EMAIL_LIMITS.metadataKeys, `at most ${EMAIL_LIMITS.metadataKeys} keys`)
      .optional()
      .meta({ description: 'Your own string values, returned when reading the email', example: { orderId: '42' } }),
    scheduledAt: z.iso
      .datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone, e.g. 2030-01-01T09:00:00Z' })
      // The pattern alone lets year 0000 through, which PostgreSQL refuses; the epoch is a
      // generous floor for "a past time" and keeps every stored date an ordinary one.
      .refine((v) => Date.parse(v) >= 0, 'must be a real date from 1970 on')
      .optional()
      .meta({ description: 'Send later (at most 30 days ahead); a past time sends now' }),
  })
  .superRefine((e, ctx) => {
    if (e.template) {
      for (const field of ['subject', 'text', 'html'] as const) {
        if (e[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'not allowed with a template (the template gives it)' });
      }
    } else {
      if (e.subject === undefined) ctx.addIssue({ code: 'custom', path: ['subject'], message: 'required (or use a template)' });
      if (e.text === undefined && e.html === undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'give text, html or both (or use a template)' });
    }
    const recipients = e.to.length + (e.cc?.length ?? 0) + (e.bcc?.length ?? 0);
    if (recipients > EMAIL_LIMITS.recipients) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: `at most ${EMAIL_LIMITS.recipients} recipients across to, cc and bcc (got ${recipients})` });
    }
    const bytes = (e.attachments ?? []).reduce((sum, a) => sum + base64DecodedBytes(a.content), 0);
    if (bytes > EMAIL_LIMITS.attachmentBytes) {
      ctx.addIssue({ code: 'custom', path: ['attachments'], message: `attachments total ${bytes} bytes; the limit is ${EMAIL_LIMITS.attachmentBytes}` });
    }
    if (e.scheduledAt !== undefined && Date.parse(e.scheduledAt) > Date.now() + EMAIL_LIMITS.scheduleAheadMs) {
      ctx.addIssue({ code: 'custom', path: ['scheduledAt'], message: 'at most 30 days ahead' });
    }
  })
  .meta({ id: 'SendEmail', description: 'Give subject and text/html, or a template with its data.' });

export const sendBatchSchema = z
  .array(sendEmailSchema)
  .min(1, 'give at least one email')
  .max(EMAIL_LIMITS.batch, `at most ${EMAIL_LIMITS.batch} emails per batch`)
  .meta({ id: 'SendEmailBatch', description: 'Validated as a whole: one bad email rejects the batch, and errors name its index.' });

export type SendEmailInput = z.infer<typeof sendEmailSchema>;

export const acceptedEmailSchema = z
  .object({ id: z.uuid(), status: z.enum(['queued', 'scheduled']) })
  .meta({ id: 'AcceptedEmail' });

export const acceptedBatchSchema = z.object({ data: z.array(acceptedEmailSchema) }).meta({ id: 'AcceptedEmailBatch' });

export const emailAttemptSchema = z
  .object({
    number: z.number().int(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
    outcome: z.enum(['sent', 'retry', 'failed']).nullable().meta({ description: 'null while the attempt runs' }),
    smtpResponse: z.string().nullable(),
    error: z.string().nullable(),
    suppressedRecipients: z.array(z.string()).meta({ description: 'Recipients left out of this attempt: they are on the suppression list' }),
  })
  .meta({ id: 'EmailAttempt' });

export const emailReportSchema = z
  .object({
    kind: z.enum(['hard_bounce', 'soft_bounce', 'delayed', 'delivered', 'complaint']),
    recipient: z.string(),
    status: z.string().nullable().meta({ description: 'Enhanced status code, e.g. 5.1.1', example: '5.1.1' }),
    diagnostic: z.string().nullable().meta({ description: "The receiving server's words, or the feedback type of a complaint" }),
    receivedAt: z.iso.datetime(),
  })
  .meta({ id: 'EmailReport', description: 'A delivery report or complaint that came back after sending (needs BOUNCE_DOMAIN)' });

const emailCommon = {
  id: z.uuid(),
  status: emailStatus,
  from: z.string(),
  to: z.array(z.string()),
  subject: z.string(),
  tags: z.array(z.string()),
  scheduledAt: z.iso.datetime().nullable(),
  createdAt: z.iso.datetime(),
  sentAt: z.iso.datetime().nullable(),
};

export const emailSummarySchema = z.object(emailCommon).meta({ id: 'EmailSummary' });

export const emailSchema = z
  .object({
    ...emailCommon,
    cc: z.array(z.string()),
    bcc: z.array(z.string()),
    replyTo: z.array(z.string()),
    text: z.string().nullable(),
    html: z.string().nullable(),
    templateId: z.uuid().nullable(),
    headers: z.record(z.string(), z.string()).nullable(),
    attachments: z.array(z.object({ filename: z.string(), contentType: z.string().nullable(), size: z.number().int() })),
    metadata: z.record(z.string(), z.string()).nullable(),
    messageId: z.string().nullable(),
    attemptCount: z.number().int(),
    lastError: z.string().nullable(),
    updatedAt: z.iso.datetime(),
    failedAt: z.iso.datetime().nullable(),
    cancelledAt: z.iso.datetime().nullable(),
    attempts: z.array(emailAttemptSchema),
    reports: z.array(emailReportSchema),
  })
  .meta({ id: 'Email' });

export const emailListSchema = z
  .object({ data: z.array(emailSummarySchema), nextCursor: z.string().nullable().meta({ description: 'Pass as cursor for the next page; null on the last' }) })
  .meta({ id: 'EmailList' });

export const emailListQuery = z.strictObject({
  status: emailStatus.optional(),
  tag: z.string().max(64).optional(),
  limit: decimalInt(1, 100).default(20),
  cursor: z.string().max(200).optional(),
});

export const emailParams = z.object({ id: z.uuid() });

export const cancelledEmailSchema = z.object({ id: z.uuid(), status: z.literal('cancelled') }).meta({ id: 'CancelledEmail' });
