/**
 * The worker's question before each send: which of these recipients are suppressed? One indexed
 * look-up (the unique index on applicationId + address) for all of an email's recipients, and
 * concurrent jobs share the statement (shared/coalesce.ts), so under load one round trip serves
 * many emails. It runs on every send, so it is a prepared statement on a pg pool of its own
 * rather than a Prisma call: the ORM's per-call work was most of the check's CPU. The cost per
 * email is what bench/deliverability.ts measures.
 */
import type { Pool } from 'pg';
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

/** Statements at once: what arrives meanwhile goes in the next one. */
export const SUPPRESSION_CHECK_POOL_SIZE = 1;

const CHECK_SQL = `
  SELECT i."k", i."a"
  FROM unnest($1::int[], $2::uuid[], $3::text[]) AS i("k", "app", "a")
  WHERE EXISTS (SELECT 1 FROM "suppressions" s WHERE s."applicationId" = i."app" AND s."address" = i."a")`;

export function createSuppressionCheck(deps: { pool: Pool }): SuppressionCheck {
  const ask = createCoalescer<Question>({
    maxInFlight: SUPPRESSION_CHECK_POOL_SIZE,
    maxItems: 500,
    async run(questions) {
      const k: number[] = [];
      const apps: string[] = [];
      const addresses: string[] = [];
      questions.forEach((q, i) => {
        q.suppressed = [];
        for (const a of q.addresses) {
          k.push(i);
          apps.push(q.applicationId);
          addresses.push(a);
        }
      });
      if (addresses.length === 0) return;
      const { rows } = await deps.pool.query<{ k: number; a: string }>({ name: 'suppression-check', text: CHECK_SQL, values: [k, apps, addresses] });
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
