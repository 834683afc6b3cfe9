/**
 * What an inbound message says, before we know which email it is about:
 *
 * - RFC 3464 delivery status (multipart/report; report-type=delivery-status, or any message with
 *   a message/delivery-status part): one entry per recipient block, with its Action, Status,
 *   Diagnostic-Code and Final-/Original-Recipient;
 * - RFC 5965 feedback report (report-type=feedback-report): a complaint, with the recipient
 *   (Original-Rcpt-To, else the original message's headers) and the original's ids;
 * - the classic plain-text bounce (qmail, older Yahoo: "<address>:" then the server's reply) when
 *   it comes from a mailer daemon;
 * - anything else (auto-replies, empty or broken mail): unusable, with a reason.
 *
 * Outcome per recipient: Action failed with a 5.x.x Status is a hard bounce; failed with 4.x.x a
 * soft bounce (recorded, never suppressed); delayed is a delay; delivered, relayed and expanded
 * are deliveries. Pure: no I/O, never throws.
 */
import { normaliseAddress } from '../suppressions';
import { header, parseHeaderBlock, parseMime, walk, type MimePart } from './mime';

export type RecipientOutcome = 'hard_bounce' | 'soft_bounce' | 'delayed' | 'delivered';

export interface ReportedRecipient {
  /** Final-Recipient (else Original-Recipient), normalised. */
  recipient: string;
  /** Original-Recipient when given: the address as we sent it, before forwarding or aliases. */
  originalRecipient: string | null;
  outcome: RecipientOutcome;
  action: string;
  /** Enhanced status code, e.g. 5.1.1 (RFC 3463). */
  status: string | null;
  diagnostic: string | null;
}

/** What the returned original (or its headers) tells about the email it was. */
export interface OriginalMessage {
  emailId?: string;
  messageId?: string;
  returnPath?: string;
  recipients: string[];
}

export type UnusableReason = 'empty' | 'not_a_report' | 'malformed_report';

export type Classification =
  | { kind: 'delivery_status'; recipients: ReportedRecipient[]; original: OriginalMessage; reportId: string | null }
  | { kind: 'complaint'; feedbackType: string; recipient: string | null; original: OriginalMessage; reportId: string | null }
  | { kind: 'unusable'; reason: UnusableReason; detail: string };

const MAX_DIAGNOSTIC = 1000;
const MAILER_DAEMON = /mailer-daemon|postmaster|mail delivery|mailer daemon/i;

/** Groups of `Name: value` fields separated by blank lines (RFC 3464 2.1, RFC 5965 3.1). */
export function parseFieldGroups(text: string): Map<string, string>[] {
  return text
    .replace(/\r\n/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((block) => {
      const fields = new Map<string, string>();
      for (const [name, values] of parseHeaderBlock(block)) fields.set(name, values[0]);
      return fields;
    })
    .filter((g) => g.size > 0);
}

/** `rfc822; user@example.com` → the normalised address. */
function typedAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const semi = value.indexOf(';');
  return normaliseAddress((semi >= 0 ? value.slice(semi + 1) : value).trim());
}

function outcomeOf(action: string, status: string | null, diagnostic: string | null): RecipientOutcome | undefined {
  switch (action) {
    case 'failed': {
      const cls = status?.[0] ?? /(?:^|\s)([45])\d\d[\s-]/.exec(diagnostic ?? '')?.[1];
      return cls === '4' ? 'soft_bounce' : 'hard_bounce'; // failed is final (RFC 3464 2.3.3): hard unless it says 4.x.x
    }
    case 'delayed':
      return 'delayed';
    case 'delivered':
    case 'relayed':
    case 'expanded':
      return 'delivered';
    default:
      return undefined;
  }
}

function firstLine(text: string, max: number): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, max);
}

function enclosedOriginal(root: MimePart): MimePart | undefined {
  return [...walk(root)].find(
    (p) => p !== root && p.children.length === 1 && ['message/rfc822', 'message/global', 'text/rfc822-headers', 'message/global-headers'].includes(p.contentType),
  )?.children[0];
}

function originalOf(enclosed: MimePart | undefined): OriginalMessage {
  if (!enclosed) return { recipients: [] };
  const get = (name: string) => header(enclosed, name);
  const addressList = (value: string | undefined) => (value ?? '').split(',').map((a) => normaliseAddress(a)).filter((a): a is string => a !== undefined);
  return {
    emailId: get('x-easeemail-id')?.trim().toLowerCase(),
    messageId: get('message-id')?.trim(),
    returnPath: get('return-path')?.trim().replace(/^<|>$/g, ''),
    recipients: [
      ...new Set([
        ...addressList(get('x-hmxmroriginalrecipient')), // Microsoft JMRP names the complainer here
        ...addressList(get('to')),
        ...addressList(get('cc')),
      ]),
    ],
  };
}

function deliveryStatus(root: MimePart, statusPart: MimePart): Classification {
  const groups = parseFieldGroups(statusPart.body.toString('utf8'));
  const recipients: ReportedRecipient[] = [];
  for (const g of groups) {
    const recipient = typedAddress(g.get('final-recipient')) ?? typedAddress(g.get('original-recipient'));
    const action = (g.get('action') ?? '').trim().toLowerCase().split(/\s/)[0];
    if (!recipient || !action) continue; // the per-message group, or a block we cannot use
    const status = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(g.get('status') ?? '')?.[1] ?? null;
    const diagnosticRaw = g.get('diagnostic-code');
    const diagnostic = diagnosticRaw ? firstLine(diagnosticRaw.replace(/^\s*[a-z0-9-]+\s*;\s*/i, ''), MAX_DIAGNOSTIC) : null;
    const outcome = outcomeOf(action, status, diagnostic);
    if (outcome) recipients.push({ recipient, originalRecipient: typedAddress(g.get('original-recipient')) ?? null, outcome, action, status, diagnostic });
  }
  if (recipients.length === 0) return { kind: 'unusable', reason: 'malformed_report', detail: 'a delivery-status part without a usable recipient block' };
  return { kind: 'delivery_status', recipients, original: originalOf(enclosedOriginal(root)), reportId: header(root, 'message-id') ?? null };
}

function feedback(root: MimePart, reportPart: MimePart): Classification {
  const [fields] = parseFieldGroups(reportPart.body.toString('utf8'));
  if (!fields?.get('feedback-type')) return { kind: 'unusable', reason: 'malformed_report', detail: 'a feedback report without Feedback-Type' };
  const original = originalOf(enclosedOriginal(root));
  const recipient = typedAddress(fields.get('original-rcpt-to')) ?? (original.recipients.length === 1 ? original.recipients[0] : null);
  if (!original.returnPath && fields.get('original-mail-from')) original.returnPath = fields.get('original-mail-from')!.trim().replace(/^<|>$/g, '');
  return { kind: 'complaint', feedbackType: fields.get('feedback-type')!.trim().toLowerCase(), recipient, original, reportId: header(root, 'message-id') ?? null };
}

/** qmail's and older Yahoo's bounce: "<user@example.com>:" followed by the remote server's reply. */
function plainTextBounce(root: MimePart): Classification | undefined {
  const from = `${header(root, 'from') ?? ''} ${header(root, 'return-path') ?? ''}`;
  if (!MAILER_DAEMON.test(from) && !/^\s*<?>?\s*$/.test(header(root, 'return-path') ?? 'x')) return undefined;
  const textPart = [...walk(root)].find((p) => p.contentType === 'text/plain' && p.children.length === 0);
  if (!textPart) return undefined;
  const text = textPart.body.toString('utf8').replace(/\r\n/g, '\n');
  const recipients: ReportedRecipient[] = [];
  const re = /^<([^<>\s]+@[^<>\s]+)>:\s*\n((?:.+\n?){1,8})/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const recipient = normaliseAddress(m[1]);
    const reply = /\b([45])(\d\d)\b[:\s-]*(.*)/.exec(m[2]);
    if (!recipient || !reply) continue;
    const status = /\b([45]\.\d{1,3}\.\d{1,3})\b/.exec(m[2])?.[1] ?? null;
    const hard = (status?.[0] ?? reply[1]) === '5';
    recipients.push({ recipient, originalRecipient: null, outcome: hard ? 'hard_bounce' : 'soft_bounce', action: 'failed', status, diagnostic: firstLine(m[2], MAX_DIAGNOSTIC) });
  }
  if (recipients.length === 0) return undefined;
  // The copy of the original follows a marker line, inline in the text.
  const copy = /^-{2,}\s*(?:Below this line is a copy of the message|Enclosed is a copy of the message)[^\n]*\n+/im.exec(text);
  const original = copy ? originalOf({ headers: parseHeaderBlock(text.slice(copy.index + copy[0].length).split(/\n\s*\n/)[0]), contentType: 'text/plain', params: {}, body: Buffer.alloc(0), children: [] }) : { recipients: [] };
  return { kind: 'delivery_status', recipients, original, reportId: header(root, 'message-id') ?? null };
}

export function classifyMessage(raw: Buffer): Classification {
  if (raw.length === 0 || raw.toString('latin1').trim() === '') return { kind: 'unusable', reason: 'empty', detail: 'an empty message' };
  let root: MimePart;
  try {
    root = parseMime(raw);
  } catch (err) {
    return { kind: 'unusable', reason: 'malformed_report', detail: `unreadable MIME: ${String((err as Error).message).slice(0, 200)}` };
  }
  const parts = [...walk(root)];
  const status = parts.find((p) => p.contentType === 'message/delivery-status' || p.contentType === 'message/global-delivery-status');
  if (status) return deliveryStatus(root, status);
  const report = parts.find((p) => p.contentType === 'message/feedback-report');
  if (report) return feedback(root, report);
  const plain = plainTextBounce(root);
  if (plain) return plain;
  const subject = header(root, 'subject');
  return { kind: 'unusable', reason: 'not_a_report', detail: `neither a delivery status nor a feedback report${subject ? ` (subject: ${firstLine(subject, 120)})` : ''}` };
}
