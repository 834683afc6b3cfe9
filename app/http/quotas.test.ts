import { activeQuotas, batchUnits, quotaHeaders, quotaState, tightest, type ActiveQuota } from './quotas';

const none = { emailQuotaPerMinute: null, emailQuotaPerDay: null, eventQuotaPerMinute: null, eventQuotaPerDay: null };

test('only the quotas an application set are active, minute before day, of the kind asked', () => {
  expect(activeQuotas(none)).toEqual([]);
  const settings = { ...none, emailQuotaPerDay: 100, emailQuotaPerMinute: 10, eventQuotaPerDay: 5 };
  expect(activeQuotas(settings, 'emails').map((q) => `${q.setting}=${q.limit}`)).toEqual(['emailQuotaPerMinute=10', 'emailQuotaPerDay=100']);
  expect(activeQuotas(settings, 'events').map((q) => `${q.kind}/${q.window}=${q.limit}`)).toEqual(['events/day=5']);
  expect(activeQuotas(settings)).toHaveLength(3);
});

test('a batch counts its length, bounded to [1, the batch limit] before validation', () => {
  const units = batchUnits(100);
  expect([units([1, 2, 3]), units([]), units(Array(250).fill({})), units({ not: 'an array' }), units(undefined)]).toEqual([3, 1, 100, 1, 1]);
});

test('the headers show the quota with the least room left; on a tie the one that resets later', () => {
  const minute: ActiveQuota = { setting: 'emailQuotaPerMinute', kind: 'emails', window: 'minute', limit: 10 };
  const day: ActiveQuota = { setting: 'emailQuotaPerDay', kind: 'emails', window: 'day', limit: 100 };
  expect(tightest([quotaState(minute, 4, 30_000, 1), quotaState(day, 50, 3_600_000, 1)]).setting).toBe('emailQuotaPerMinute');
  expect(tightest([quotaState(minute, 0, 30_000, 1), quotaState(day, 95, 3_600_000, 1)]).setting).toBe('emailQuotaPerDay');
  expect(tightest([quotaState(minute, 10, 30_000, 1), quotaState(day, 100, 3_600_000, 1)]).setting).toBe('emailQuotaPerDay');
  // Remaining never reads below 0; the reset rounds up to whole seconds.
  expect(quotaHeaders(quotaState(minute, 12, 1_200, 1))).toEqual({ 'X-Quota-Name': 'emailQuotaPerMinute', 'X-Quota-Limit': '10', 'X-Quota-Remaining': '0', 'X-Quota-Reset': '2' });
});
