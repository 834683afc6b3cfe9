import { requestHash } from './idempotency';

describe('requestHash', () => {
  test('ignores key order and undefined members, not values', () => {
    const a = requestHash({ to: ['x@example.com'], subject: 'Hi', nested: { b: 1, a: [1, { z: 1, y: 2 }] } });
    const b = requestHash({ nested: { a: [1, { y: 2, z: 1 }], b: 1 }, subject: 'Hi', to: ['x@example.com'], extra: undefined });
    expect(a).toBe(b);
    expect(requestHash({ subject: 'Hi ' })).not.toBe(requestHash({ subject: 'Hi' }));
    expect(requestHash([1, 2])).not.toBe(requestHash([2, 1]));
  });

  test('tells types apart', () => {
    expect(requestHash({ a: 1 })).not.toBe(requestHash({ a: '1' }));
    expect(requestHash(undefined)).toBe(requestHash(null));
    expect(requestHash({})).not.toBe(requestHash([]));
  });
});
