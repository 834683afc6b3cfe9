/**
 * Per-request limits, the same order as Resend's and Postmark's (50 recipients, 100 per batch).
 * The request body as a whole is also capped by BODY_LIMIT_BYTES (413) before any of these.
 */
import { EMAIL_BATCH_MAX } from '../queue';
import { MAX_HEADER_LINE } from '../shared/headers';

export const EMAIL_LIMITS = {
  /** to + cc + bcc of one email. */
  recipients: 50,
  replyTo: 10,
  /** Emails of one batch request: as many as a batch job carries, so its due emails need at most two. */
  batch: EMAIL_BATCH_MAX,
  addressLength: 320,
  subjectLength: MAX_HEADER_LINE,
  /** Decoded bytes of all attachments of one email (the base64 in the request is 4/3 of it). */
  attachmentBytes: 7 * 1024 * 1024,
  attachments: 20,
  filenameLength: 255,
  headers: 50,
  headerValueLength: MAX_HEADER_LINE,
  tags: 20,
  metadataKeys: 50,
  metadataValueLength: 500,
  /** How far ahead scheduledAt may be. */
  scheduleAheadMs: 30 * 24 * 3600 * 1000,
} as const;
