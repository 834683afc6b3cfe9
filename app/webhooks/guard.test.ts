/**
 * The outbound guard's address rules, without any connection (network rule: tests only send to
 * loopback). Delivery-time refusals of names are tested in test/webhooks/guard-delivery.test.ts.
 */
import type dns from 'node:dns';
import { REFUSED_AT_CREATION } from './private-urls.fixture';
import { classifyAddress, endpointUrlProblem, guardedLookup, OutboundAddressRefusedError, type LookupFunction } from './guard';

const strict = { allowPrivateNetworks: false };
const relaxed = { allowPrivateNetworks: true };

describe('endpointUrlProblem with the address rule on', () => {
  it.each(REFUSED_AT_CREATION)('refuses %s', (url) => {
    expect(endpointUrlProblem(url, strict)).toMatch(/WEBHOOK_ALLOW_PRIVATE_NETWORKS/);
  });

  it('covers at least 25 URLs', () => {
    expect(REFUSED_AT_CREATION.length).toBeGreaterThanOrEqual(25);
  });

  it.each(['https://example.com/webhooks', 'http://hooks.example.org:8080/a?b=c', 'https://93.184.216.34/', 'https://[2606:4700:4700::1111]/x'])(
    'accepts the public URL %s (no DNS at creation)',
    (url) => {
      expect(endpointUrlProblem(url, strict)).toBeUndefined();
    },
  );

  it('lets WEBHOOK_ALLOW_PRIVATE_NETWORKS=true through for every private literal', () => {
    for (const url of REFUSED_AT_CREATION) expect(endpointUrlProblem(url, relaxed)).toBeUndefined();
  });
});

describe('endpointUrlProblem, rules that always apply', () => {
  it.each([
    ['ftp://example.com/', /scheme must be http or https/],
    ['file:///etc/passwd', /scheme must be http or https/],
    ['javascript:alert(1)', /scheme must be http or https/],
    ['gopher://example.com/', /scheme must be http or https/],
    ['ws://example.com/', /scheme must be http or https/],
    ['http://user:pass@example.com/', /credentials/],
    ['https://user@example.com/', /credentials/],
    ['https://example.com/#frag', /fragment/],
    ['example.com/hook', /absolute/],
    ['http://example.com:0/', /port 0/],
  ])('refuses %s', (url, message) => {
    expect(endpointUrlProblem(url, relaxed)).toMatch(message);
    expect(endpointUrlProblem(url, strict)).toMatch(message);
  });

  it('refuses URLs longer than 2048 characters', () => {
    expect(endpointUrlProblem(`https://example.com/${'a'.repeat(2048)}`, relaxed)).toMatch(/at most 2048/);
  });
});

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private (RFC 1918)'],
    ['100.127.255.255', 'carrier-grade NAT (RFC 6598)'],
    ['169.254.169.254', 'cloud metadata'],
    ['169.254.10.10', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd12:3456::1', 'unique-local (ULA)'],
    ['::ffff:8.8.8.8', 'IPv4-mapped IPv6'],
    ['::', 'unspecified'],
    ['0.0.0.0', 'unspecified ("this network")'],
    ['239.255.255.250', 'multicast'],
    ['ff05::2', 'multicast'],
    ['64:ff9b::192.168.0.1', 'NAT64 of a private (RFC 1918) address'],
    ['2002:0a00:0001::1', '6to4 of a private (RFC 1918) address'],
    ['not-an-ip', 'not an IP address'],
  ])('%s is %s', (ip, label) => {
    expect(classifyAddress(ip)).toBe(label);
  });

  it.each(['8.8.8.8', '93.184.216.34', '100.128.0.1', '172.32.0.1', '2606:4700:4700::1111', '64:ff9b::8.8.8.8', '2002:0808:0808::1'])(
    '%s is public',
    (ip) => {
      expect(classifyAddress(ip)).toBeUndefined();
    },
  );
});

describe('guardedLookup', () => {
  const fakeResolver =
    (answers: Record<string, dns.LookupAddress[]>): LookupFunction =>
    (hostname, _options, callback) =>
      callback(null, answers[hostname] ?? []);

  const run = (lookup: ReturnType<typeof guardedLookup>, host: string, all: boolean) =>
    new Promise<{ err: unknown; result: unknown[] }>((resolve) => lookup(host, { all }, (err: unknown, ...result: unknown[]) => resolve({ err, result })));

  const lookup = guardedLookup(
    fakeResolver({
      'public.test': [{ address: '93.184.216.34', family: 4 }],
      'loopback.test': [{ address: '127.0.0.1', family: 4 }],
      'mixed.test': [
        { address: '93.184.216.34', family: 4 },
        { address: '::1', family: 6 },
      ],
    }),
  );

  it('passes public answers through in both callback shapes', async () => {
    expect(await run(lookup, 'public.test', true)).toEqual({ err: null, result: [[{ address: '93.184.216.34', family: 4 }]] });
    expect(await run(lookup, 'public.test', false)).toEqual({ err: null, result: ['93.184.216.34', 4] });
  });

  it('refuses a name resolving to loopback, naming the address and the rule', async () => {
    const { err } = await run(lookup, 'loopback.test', true);
    expect(err).toBeInstanceOf(OutboundAddressRefusedError);
    expect((err as Error).message).toMatch(/loopback\.test resolves to 127\.0\.0\.1, a loopback address/);
  });

  it('refuses a name when any of its addresses is private', async () => {
    const { err } = await run(lookup, 'mixed.test', false);
    expect(err).toBeInstanceOf(OutboundAddressRefusedError);
  });

  it('reports a name without addresses as not found', async () => {
    const { err } = await run(lookup, 'nothing.test', true);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });
});
