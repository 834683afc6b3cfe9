import { hasHeaderBreak } from '../shared/headers';
import { formatMailbox, mailboxAddress, parseMailbox } from '../shared/mailbox';
import { mailbox } from './fields';
import { base64DecodedBytes } from './schemas';

describe('mailboxes', () => {
  test.each([
    ['user@example.com', { address: 'user@example.com' }],
    ['  user@example.com ', { address: 'user@example.com' }],
    ['Jane <jane@example.com>', { name: 'Jane', address: 'jane@example.com' }],
    ['"Doe, Jane" <jane@example.com>', { name: 'Doe, Jane', address: 'jane@example.com' }],
    ['"Say \\"hi\\"" <a@example.com>', { name: 'Say "hi"', address: 'a@example.com' }],
    ['Shop "Team" <shop@example.com>', { name: 'Shop "Team"', address: 'shop@example.com' }],
    ['<bare@example.com>', { address: 'bare@example.com' }],
  ])('parses %j', (input, expected) => {
    expect(parseMailbox(input)).toEqual(expected);
  });

  test.each(['', 'not-an-address', 'a@b', 'Jane <jane@example.com', 'a@example.com\r\nBcc: x@example.com', 'Jane\n <jane@example.com>', 'a@example.com, b@example.com'])(
    'refuses %j',
    (input) => {
      expect(parseMailbox(input)).toBeUndefined();
    },
  );

  test('stores display names quoted, so a comma never splits a mailbox', () => {
    expect(formatMailbox({ name: 'Doe, Jane', address: 'j@example.com' })).toBe('"Doe, Jane" <j@example.com>');
    expect(formatMailbox({ name: 'A "B" \\ C', address: 'a@example.com' })).toBe('"A \\"B\\" \\\\ C" <a@example.com>');
    expect(parseMailbox(formatMailbox({ name: 'A "B" \\ C', address: 'a@example.com' }))).toEqual({ name: 'A "B" \\ C', address: 'a@example.com' });
    expect(mailboxAddress('"Doe, Jane" <j@example.com>')).toBe('j@example.com');
    expect(mailboxAddress('EaseEmail <no-reply@localhost>')).toBe('no-reply@localhost'); // MAIL_FROM may use a local domain
  });

  test('the schema normalizes and explains', () => {
    expect(mailbox.parse('Doe, Jane <j@example.com>')).toBe('"Doe, Jane" <j@example.com>');
    const bad = mailbox.safeParse('nope');
    expect(bad.error?.issues[0].message).toMatch(/is not an email address/);
    expect(mailbox.safeParse('a@example.com\nX: y').error?.issues[0].message).toMatch(/header injection/);
  });

  test('header breaks are CR, LF and NUL', () => {
    expect(['a\rb', 'a\nb', 'a\0b'].map(hasHeaderBreak)).toEqual([true, true, true]);
    expect(hasHeaderBreak('tab\tis fine')).toBe(false);
  });
});

test('base64DecodedBytes counts padding', () => {
  for (const n of [0, 1, 2, 3, 4, 5, 1000]) expect(base64DecodedBytes(Buffer.alloc(n).toString('base64'))).toBe(n);
});
