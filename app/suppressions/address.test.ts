import { normaliseAddress, normaliseAll } from './address';

describe('address normalisation', () => {
  test.each([
    ['user@Example.COM', 'user@example.com'],
    ['  User@example.com\t', 'User@example.com'],
    ['<user@EXAMPLE.com>', 'user@example.com'],
    ['"Doe, Jane" <Jane@Example.com>', 'Jane@example.com'],
  ])('%j → %j', (input, expected) => {
    expect(normaliseAddress(input)).toBe(expected);
  });

  test.each(['', 'not an address', 'a@b', 'a@example.com\r\nBcc: x@example.com', `${'a'.repeat(250)}@example.com`, 'x'.repeat(10_000)])('refuses %j', (input) => {
    expect(normaliseAddress(input)).toBeUndefined();
  });

  test('a list keeps one of each and drops what is not an address', () => {
    expect(normaliseAll(['a@X.com', '"A" <a@x.com>', 'b@x.com', 'junk'])).toEqual(['a@x.com', 'b@x.com']);
  });
});
