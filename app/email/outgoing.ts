/**
 * What the email processor asks of deliverability between claiming an email and SMTP
 * (implemented by deliverability/outgoing.ts): the message to send, and who was left out because
 * they are suppressed; or that nobody is left.
 */
import type { OutgoingMessage, StoredEmail } from './message';

export type PreparedMessage =
  | { kind: 'send'; message: OutgoingMessage; suppressed: string[] }
  | { kind: 'suppressed'; suppressed: string[] };

export interface OutgoingMail {
  prepare(email: StoredEmail & { applicationId: string }): Promise<PreparedMessage>;
}
