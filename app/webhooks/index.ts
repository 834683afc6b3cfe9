/**
 * The webhooks domain's public face: what other domains may use. Emails record their terminal
 * events (email.sent, ...) in their own transaction; the deliveries are enqueued after commit
 * with `jobs.enqueue('webhook', ids)`. The roots wire everything else directly.
 */
export { fanOutInsert, recordEvent, type RecordedEvent } from './events';
