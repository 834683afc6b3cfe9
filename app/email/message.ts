/**
 * A stored email → the message nodemailer sends. The MIME message is built once, into one buffer,
 * before sending (`composeMessage`): nodemailer would otherwise stream it to the socket in many
 * small writes, and each write is a system call (measured: the largest single cost per email).
 * The transport sends that buffer as it is (transport.ts), so the message is composed once.
 */
import type { SendMailOptions } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { NewEmailRow, StoredAttachment } from './store';

/** Every message carries its id, so receivers and support can find it again. */
export const EMAIL_ID_HEADER = 'X-EaseEmail-Id';

/** What sending needs of an `emails` row. */
export type StoredEmail = Pick<NewEmailRow, 'id' | 'from' | 'to' | 'cc' | 'bcc' | 'replyTo' | 'subject' | 'text' | 'html'> & {
  headers: unknown;
  attachments: unknown;
  messageId: string | null;
};

export function toMailMessage(email: StoredEmail): SendMailOptions {
  const attachments = (email.attachments ?? []) as StoredAttachment[];
  return {
    from: email.from,
    to: email.to,
    cc: email.cc.length ? email.cc : undefined,
    bcc: email.bcc.length ? email.bcc : undefined,
    replyTo: email.replyTo.length ? email.replyTo : undefined,
    subject: email.subject,
    text: email.text ?? undefined,
    html: email.html ?? undefined,
    messageId: email.messageId ?? undefined,
    headers: { ...((email.headers ?? {}) as Record<string, string>), [EMAIL_ID_HEADER]: email.id },
    attachments: attachments.map((a) => ({ filename: a.filename, content: a.content, encoding: 'base64', contentType: a.contentType })),
    // Stored content only: never a local file or a URL named in a message.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/** A composed message: what SMTP needs, built once. */
export interface OutgoingMessage {
  envelope: { from: string; to: string[] };
  raw: Buffer;
  messageId: string;
}

/** The envelope (bcc included, as nodemailer derives it), the Message-ID and the whole message as one buffer. */
export async function composeMail(options: SendMailOptions): Promise<OutgoingMessage> {
  const node = new MailComposer(options).compile();
  const messageId = node.messageId(); // sets the header when the email has none, so raw carries it
  const envelope = node.getEnvelope() as { from: string | false; to: string[] };
  return { envelope: { from: envelope.from || '', to: envelope.to }, raw: await node.build(), messageId };
}

export function composeMessage(email: StoredEmail): Promise<OutgoingMessage> {
  return composeMail(toMailMessage(email));
}
