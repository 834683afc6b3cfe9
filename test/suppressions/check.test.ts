/**
 * The worker's suppression check (app/suppressions/check.ts) against a real PostgreSQL: the
 * questions of concurrent jobs share one statement, and each still gets only its own
 * application's listed addresses among its own recipients.
 */
import { Pool } from 'pg';
import { statementPoolSettings } from '../../app/db/connection';
import { createSuppressionCheck, SUPPRESSION_CHECK_POOL_SIZE, type SuppressionCheck } from '../../app/suppressions';
import { createTestEnvironment, type TestEnvironment } from '../support/isolation';
import { countStatements } from '../support/statements';

let t: TestEnvironment;
let pool: Pool;
let check: SuppressionCheck;
let statements: ReturnType<typeof countStatements>;
let appA: string;
let appB: string;

beforeAll(async () => {
  t = await createTestEnvironment('suppression_check');
  pool = new Pool(statementPoolSettings(t.config.databaseUrl, SUPPRESSION_CHECK_POOL_SIZE));
  statements = countStatements(pool);
  check = createSuppressionCheck({ pool });
  appA = (await t.db.application.create({ data: { name: 'check-a' } })).id;
  appB = (await t.db.application.create({ data: { name: 'check-b' } })).id;
  await t.db.suppression.createMany({
    data: [
      { applicationId: appA, address: 'gone@example.org', reason: 'hard_bounce' },
      { applicationId: appA, address: 'Angry@example.org', reason: 'complaint' },
      { applicationId: appB, address: 'only-b@example.org', reason: 'manual' },
    ],
  });
});
afterAll(async () => {
  await pool?.end();
  await t?.cleanup();
});

test('concurrent questions share a statement; each gets its own application and recipients only', async () => {
  statements.reset();
  const answers = await Promise.all([
    check.suppressedAmong(appA, ['gone@example.org', 'fine@example.org', 'Angry@example.org']),
    check.suppressedAmong(appB, ['gone@example.org', 'only-b@example.org']),
    check.suppressedAmong(appA, ['only-b@example.org']),
    check.suppressedAmong(appA, ['angry@example.org']), // the local part keeps its case
    check.suppressedAmong(appB, []),
  ]);
  expect(answers.map((a) => [...a].sort())).toEqual([['Angry@example.org', 'gone@example.org'], ['only-b@example.org'], [], [], []]);
  expect(statements.count()).toBe(1);
});

test('an address added after a question is seen by the next one', async () => {
  expect(await check.suppressedAmong(appB, ['later@example.org'])).toEqual([]);
  await t.db.suppression.create({ data: { applicationId: appB, address: 'later@example.org', reason: 'manual' } });
  expect(await check.suppressedAmong(appB, ['later@example.org'])).toEqual(['later@example.org']);
});
