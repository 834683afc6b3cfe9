/**
 * The worker's question before each send: which of these recipients are suppressed? One indexed
 * look-up (the unique index on applicationId + address) for all of an email's recipients, and
 * concurrent jobs share the statement (shared/coalesce.ts), so under load one round trip serves
 * many emails. The cost per email is what bench/deliverability.ts measures.
 */
import type { Db } from '../db/client';
import { createCoalescer } from '../shared/coalesce';

interface Question {
  applicationId: string;
  addresses: string[];
  suppressed?: string[];
}

export interface SuppressionCheck {
  /** The normalised addresses among `addresses` that are on the application's list. */
  suppressedAmong(applicationId: string, addresses: string[]): Promise<string[]>;
}

export function createSuppressionCheck(deps: { db: Db }): SuppressionCheck {
  const ask = createCoalescer<Question>({
    maxInFlight: 1,
    maxItems: 500,
    async run(questions) {
      const input = questions.flatMap((q, k) => q.addresses.map((a) => ({ k, app: q.applicationId, a })));
      for (const q of questions) q.suppressed = [];
      if (input.length === 0) return;
      const rows = await deps.db.$queryRaw<{ k: number; a: string }[]>`
        SELECT i."k", i."a"
        FROM jsonb_to_recordset(${JSON.stringify(input)}::jsonb) AS i("k" int, "app" uuid, "a" text)
        WHERE EXISTS (SELECT 1 FROM "suppressions" s WHERE s."applicationId" = i."app" AND s."address" = i."a")`;
      for (const r of rows) questions[r.k].suppressed!.push(r.a);
    },
  });
  return {
    async suppressedAmong(applicationId, addresses) {
      if (addresses.length === 0) return [];
      const q: Question = { applicationId, addresses };
      await ask([q]);
      return q.suppressed ?? [];
    },
  };
}
