/**
 * The email domain's public face: what other domains may use. An application's default sender is
 * validated as the `from` of an email is; deliverability composes the stored email itself (to
 * sign it and set its return path) and implements the processor's OutgoingMail; the inbound role
 * puts reports on the same event payload as the terminal events. The roots wire the rest directly.
 */
export { EMAIL_EVENT_CATALOG, emailEventPayload, type EmailEventSource, type EmailEventType } from './events';
export { mailbox } from './fields';
export { composeMessage, type StoredEmail } from './message';
export type { OutgoingMail, PreparedMessage } from './outgoing';
