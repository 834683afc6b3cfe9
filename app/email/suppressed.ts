/**
 * The end of an email whose every recipient is on the suppression list: no SMTP attempt. The
 * claim counted an attempt; it is taken back (attempt rows are written only when an attempt
 * ends, so there is none to remove), the email becomes
 * `suppressed` and emits email.suppressed, all in one transaction and with the claim's attempt
 * number in the condition (a worker that lost its lease changes nothing). Deliveries of the
 * event are enqueued after the commit.
 */
import type { Db, Prisma } from '../db/client';
import type { JobProducer } from '../queue/producer';
import { recordEvent } from '../webhooks';
import { emailEventPayload, type EmailEventSource } from './events';

export async function finishSuppressed(
  deps: { db: Db; jobs: Pick<JobProducer, 'enqueue'> },
  email: EmailEventSource & { applicationId: string; apiKeyId: string | null },
  suppressed: string[],
): Promise<boolean> {
  const at = new Date();
  const reason = `every recipient is on the suppression list: ${suppressed.join(', ')}`.slice(0, 1000);
  const deliveryIds = await deps.db.$transaction(async (tx) => {
    const taken = await tx.$queryRaw<{ id: string }[]>`
      UPDATE "emails" SET "status" = 'suppressed', "attemptCount" = "attemptCount" - 1, "updatedAt" = ${at}::timestamp(3), "lastError" = ${reason}
      WHERE "id" = ${email.id}::uuid AND "status" = 'sending' AND "attemptCount" = ${email.attemptCount}
      RETURNING "id"::text AS "id"`;
    if (taken.length === 0) return undefined;
    const payload: Prisma.InputJsonObject = {
      ...emailEventPayload({ ...email, attemptCount: email.attemptCount - 1 }, 'suppressed', at, { error: reason }),
      suppressedRecipients: suppressed,
    };
    return (await recordEvent(tx, { type: 'email.suppressed', payload, apiKeyId: email.apiKeyId, applicationId: email.applicationId })).deliveryIds;
  });
  if (deliveryIds === undefined) return false;
  await deps.jobs.enqueue('webhook', deliveryIds);
  return true;
}
