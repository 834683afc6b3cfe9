/**
 * Writing accepted emails: the api's hot path.
 *
 * One INSERT takes any number of rows as a single JSON parameter (jsonb_populate_recordset), so
 * the SQL text never changes and the database parses one value instead of 22 parameters a row.
 * Concurrent requests share it (shared/coalesce.ts): under load one round trip and one WAL flush serve
 * many requests.
 *
 * Why not Prisma's createMany here: measured on the project's 2-core machine it costs ~0.7 ms of
 * CPU per row (query compilation in the client); this statement costs ~0.05 ms per row when
 * batched. Given a pg pool (the api's), it runs there as a prepared statement, as POST /v1/events
 * records its events: Prisma's raw-query layer and the pg adapter under it were ~10 % of the api's
 * CPU on batch accept. Inside a transaction (with an Idempotency-Key) it goes through Prisma, and
 * reads and the rest of the domain use Prisma as usual.
 *
 * The rows due now that one statement writes, from one batch request or from many single sends
 * accepted together, go on batch jobs (queue/jobs.ts emailBatch) of up to EMAIL_BATCH_MAX, and
 * each row names its batch (`deliveryBatchId`): under load an accepted email then costs a share of
 * one job add instead of one add each (~0.05 ms of the api's CPU and 0.03 ms of Redis's). Their
 * jobs are added after the commit without being waited for (outbox rule); a lone due row, and
 * every scheduled one, gets a job of its own from the caller.
 */
import type { Pool } from 'pg';
import type { Db, Prisma } from '../db/client';
import type { EmailStatus } from '../generated/prisma/client';
import { EMAIL_BATCH_MAX, emailBatchJob } from '../queue';
import type { JobProducer } from '../queue/producer';
import { createCoalescer } from '../shared/coalesce';

/** An attachment as stored in emails.attachments (content stays base64). */
export interface StoredAttachment {
  filename: string;
  contentType?: string;
  content: string;
}

/** A new `emails` row, every column the table requires (JSON-serializable). */
export interface NewEmailRow {
  id: string;
  applicationId: string;
  apiKeyId: string | null;
  status: Extract<EmailStatus, 'queued' | 'scheduled'>;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo: string[];
  subject: string;
  text: string | null;
  html: string | null;
  templateId: string | null;
  templateData: Record<string, unknown> | null;
  headers: Record<string, string> | null;
  attachments: StoredAttachment[] | null;
  tags: string[];
  metadata: Record<string, string> | null;
  messageId: string;
  scheduledAt: Date | null;
  attemptCount: 0;
  /** The batch job delivering it (queue/jobs.ts emailBatch), or null for a job of its own. */
  deliveryBatchId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const COLUMNS: (keyof NewEmailRow)[] = [
  'id', 'applicationId', 'apiKeyId', 'status', 'from', 'to', 'cc', 'bcc', 'replyTo', 'subject', 'text', 'html', 'templateId',
  'templateData', 'headers', 'attachments', 'tags', 'metadata', 'messageId', 'scheduledAt', 'attemptCount', 'deliveryBatchId', 'createdAt', 'updatedAt',
];
const COLUMN_LIST = COLUMNS.map((c) => `"${c}"`).join(', ');
// Timestamps travel as ISO strings in UTC; the columns are timestamp(3) in UTC, as Prisma writes them.
const INSERT_SQL = `INSERT INTO "emails" (${COLUMN_LIST}) SELECT ${COLUMN_LIST} FROM jsonb_populate_recordset(NULL::"emails", $1::jsonb)`;

/** Inserts running at once; requests arriving meanwhile go together in the next one. */
const MAX_IN_FLIGHT = 2;
/** Connections of the api's accept pool (app/api.ts): one for each insert in flight. */
export const EMAIL_ACCEPT_POOL_SIZE = MAX_IN_FLIGHT;
/** Upper bound of rows per statement (a batch request alone is 100). */
const MAX_ROWS_PER_INSERT = 1_000;

/**
 * Puts the rows due now (queued) on batches of up to EMAIL_BATCH_MAX, each row naming its batch's
 * id (its first email's); returns each batch's email ids. A lone due row is left to a job of its own.
 */
export function assignDeliveryBatches(rows: NewEmailRow[]): string[][] {
  for (const row of rows) row.deliveryBatchId = null;
  const due = rows.filter((r) => r.status === 'queued');
  const batches: string[][] = [];
  for (let i = 0; i + 1 < due.length; i += EMAIL_BATCH_MAX) {
    const batch = due.slice(i, i + EMAIL_BATCH_MAX);
    for (const row of batch) row.deliveryBatchId = batch[0].id;
    batches.push(batch.map((r) => r.id));
  }
  return batches;
}

/**
 * @param deps.jobs where the batch jobs go; without it (tests that write rows as they are) rows
 *   keep the deliveryBatchId they were given and no job is added.
 */
export function createEmailWriter(deps: { db: Db; pool?: Pick<Pool, 'query'>; jobs?: Pick<JobProducer, 'addDetached'> }) {
  const { db, pool, jobs } = deps;

  function statement(rows: NewEmailRow[]) {
    return db.$executeRawUnsafe(INSERT_SQL, JSON.stringify(rows));
  }

  /** After the commit: the batch jobs, not waited for unless the producer's backlog is over its bound. */
  async function addBatchJobs(batches: string[][]) {
    if (jobs && batches.length > 0) await jobs.addDetached('emailBatch', batches.map(emailBatchJob));
  }

  /** Inserts the rows (committed when this resolves), batched with concurrent calls. */
  const insert = createCoalescer<NewEmailRow>({
    maxInFlight: MAX_IN_FLIGHT,
    maxItems: MAX_ROWS_PER_INSERT,
    // One request's rows can break the statement (e.g. its template was deleted meanwhile): only
    // that request should fail. (Run alone, its rows are put on batches again.)
    isolateFailures: true,
    run: async (rows) => {
      const batches = jobs ? assignDeliveryBatches(rows) : [];
      if (pool) await pool.query({ name: 'emails-insert', text: INSERT_SQL, values: [JSON.stringify(rows)] });
      else await statement(rows);
      await addBatchJobs(batches);
    },
  });

  /** The rows and other writes in one transaction (e.g. an idempotency record); batch jobs as insert's. */
  async function insertWith(rows: NewEmailRow[], others: Prisma.PrismaPromise<unknown>[]) {
    const batches = jobs ? assignDeliveryBatches(rows) : [];
    await db.$transaction([statement(rows), ...others]);
    await addBatchJobs(batches);
  }

  return { insert, insertWith };
}

export type EmailWriter = ReturnType<typeof createEmailWriter>;
