/**
 * The end of an email whose every recipient is on the suppression list: no SMTP attempt. The
 * claim opened an attempt row; it is taken back (attemptCount too), the email becomes
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
      WITH e AS (
        UPDATE "emails" SET "status" = 'suppressed', "attemptCount" = "attemptCount" - 1, "updatedAt" = ${at}::timestamp(3), "lastError" = ${reason}
        WHERE "id" = ${email.id}::uuid AND "status" = 'sending' AND "attemptCount" = ${email.attemptCount}
        RETURNING "id"
      ), a AS (
        DELETE FROM "email_attempts" WHERE "emailId" IN (SELECT "id" FROM e) AND "number" = ${email.attemptCount}
      )
      SELECT "id"::text AS "id" FROM e`;
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
