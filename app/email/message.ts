/**
 * A stored email → the message nodemailer sends. The MIME message is built into one buffer
 * before sending (`composeMessage`): nodemailer would otherwise stream it to the socket in many
 * small writes, and each write is a system call (measured: the largest single cost per email).
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
  };
}

/** The envelope (bcc included, as nodemailer derives it) and the whole message as one buffer. */
export async function composeMessage(email: StoredEmail): Promise<SendMailOptions> {
  const node = new MailComposer(toMailMessage(email)).compile();
  return { envelope: node.getEnvelope(), raw: await node.build() };
}
