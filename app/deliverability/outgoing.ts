/**
 * What the worker does to a stored email between claiming and SMTP (DESIGN.md section 11):
 *
 * - drops suppressed recipients from the envelope (headers stay as the sender wrote them); with
 *   none left there is nothing to send and the email ends `suppressed`;
 * - with BOUNCE_DOMAIN, sets the envelope sender (MAIL FROM, not the From header) to the
 *   email's VERP return path, so its bounces come back to the inbound role tagged with its id;
 * - with DKIM_*, signs the message when its From address is in DKIM_DOMAIN.
 */
import { composeMessage, type OutgoingMail } from '../email';
import { normaliseAddress, normaliseAll, type SuppressionCheck } from '../suppressions';
import { isInDomain, signMessage, type DkimSettings } from './dkim';
import type { Verp } from './verp';

export function createOutgoingMail(deps: { suppressions: SuppressionCheck; verp?: Verp; dkim?: DkimSettings }): OutgoingMail {
  const { suppressions, verp, dkim } = deps;
  return {
    async prepare(email) {
      const recipients = normaliseAll([...email.to, ...email.cc, ...email.bcc]);
      const suppressed = await suppressions.suppressedAmong(email.applicationId, recipients);
      if (recipients.length > 0 && suppressed.length === recipients.length) return { kind: 'suppressed', suppressed };
      const composed = await composeMessage(email);
      const { envelope } = composed;
      if (suppressed.length > 0) {
        const dropped = new Set(suppressed);
        envelope.to = envelope.to.filter((a) => !dropped.has(normaliseAddress(a) ?? a));
      }
      if (verp) envelope.from = verp.returnPath(email.id);
      const raw = dkim && isInDomain(email.from, dkim.domain) ? signMessage(composed.raw, dkim) : composed.raw;
      return { kind: 'send', message: { ...composed, envelope, raw }, suppressed };
    },
  };
}
