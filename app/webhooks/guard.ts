/**
 * The outbound guard: webhook URLs are chosen by API clients, so the worker must not become a
 * way into the private network (SSRF). Two checks, one classifier:
 *
 * - at endpoint creation: scheme http(s), no credentials, and a host that is an IP literal (in
 *   any form the WHATWG URL parser normalizes: 127.1, 0x7f.1, 2130706433, [::ffff:7f00:1]) or a
 *   localhost name must be public;
 * - at delivery: names are resolved by `guardedLookup`, which is the lookup the HTTP client's
 *   socket uses to connect. Every resolved address is checked and the socket connects to one of
 *   exactly those addresses, so there is no window between "checked" and "connected" for a DNS
 *   rebinding answer to slip into. A name with any refused address is refused as a whole.
 *
 * WEBHOOK_ALLOW_PRIVATE_NETWORKS=true turns the address rule off (local work, tests); the
 * scheme and credential rules stay.
 */
import dns from 'node:dns';
import net from 'node:net';

interface Range {
  network: string;
  prefix: number;
  label: string;
}

/** IANA special-purpose registries (RFC 6890 and successors), plus cloud metadata addresses. */
const IPV4_RANGES: Range[] = [
  { network: '169.254.169.254', prefix: 32, label: 'cloud metadata' },
  { network: '100.100.100.200', prefix: 32, label: 'cloud metadata' },
  { network: '0.0.0.0', prefix: 8, label: 'unspecified ("this network")' },
  { network: '10.0.0.0', prefix: 8, label: 'private (RFC 1918)' },
  { network: '100.64.0.0', prefix: 10, label: 'carrier-grade NAT (RFC 6598)' },
  { network: '127.0.0.0', prefix: 8, label: 'loopback' },
  { network: '169.254.0.0', prefix: 16, label: 'link-local' },
  { network: '172.16.0.0', prefix: 12, label: 'private (RFC 1918)' },
  { network: '192.0.0.0', prefix: 24, label: 'IETF protocol assignments' },
  { network: '192.0.2.0', prefix: 24, label: 'documentation' },
  { network: '192.88.99.0', prefix: 24, label: '6to4 relay anycast' },
  { network: '192.168.0.0', prefix: 16, label: 'private (RFC 1918)' },
  { network: '198.18.0.0', prefix: 15, label: 'benchmarking' },
  { network: '198.51.100.0', prefix: 24, label: 'documentation' },
  { network: '203.0.113.0', prefix: 24, label: 'documentation' },
  { network: '224.0.0.0', prefix: 4, label: 'multicast' },
  { network: '240.0.0.0', prefix: 4, label: 'reserved' },
];

const IPV6_RANGES: Range[] = [
  { network: 'fd00:ec2::254', prefix: 128, label: 'cloud metadata' },
  { network: '::', prefix: 128, label: 'unspecified' },
  { network: '::1', prefix: 128, label: 'loopback' },
  { network: '::ffff:0:0', prefix: 96, label: 'IPv4-mapped IPv6' },
  { network: '::', prefix: 96, label: 'IPv4-compatible IPv6 (deprecated)' },
  { network: '64:ff9b:1::', prefix: 48, label: 'local-use NAT64' },
  { network: '100::', prefix: 64, label: 'discard-only' },
  { network: '2001::', prefix: 32, label: 'Teredo' },
  { network: '2001:db8::', prefix: 32, label: 'documentation' },
  { network: 'fc00::', prefix: 7, label: 'unique-local (ULA)' },
  { network: 'fe80::', prefix: 10, label: 'link-local' },
  { network: 'fec0::', prefix: 10, label: 'site-local (deprecated)' },
  { network: 'ff00::', prefix: 8, label: 'multicast' },
];

/** One BlockList per range, so a refusal can say which rule matched. */
const RULES = [
  ...IPV4_RANGES.map((r) => ({ ...r, family: 'ipv4' as const })),
  ...IPV6_RANGES.map((r) => ({ ...r, family: 'ipv6' as const })),
].map((r) => {
  const list = new net.BlockList();
  list.addSubnet(r.network, r.prefix, r.family);
  return { ...r, list };
});

/** The 8 hextets of a valid IPv6 address (with an optional trailing dotted quad). */
function hextets(ip: string): number[] {
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const parse = (s: string | undefined) => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  return tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function embeddedIpv4(words: number[], at: number): string {
  return [words[at] >> 8, words[at] & 0xff, words[at + 1] >> 8, words[at + 1] & 0xff].join('.');
}

/**
 * Why an address must not be connected to (e.g. "loopback"), or undefined for a public one.
 * Accepts IPv4, IPv6 (brackets and zone ids are stripped); anything else is refused.
 */
export function classifyAddress(address: string): string | undefined {
  const ip = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = net.isIP(ip);
  if (family === 0) return 'not an IP address';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const rule of RULES) {
    // BlockList also matches IPv4 rules against IPv4-mapped IPv6; only same-family rules apply here.
    if (rule.family === type && rule.list.check(ip, type)) return rule.label;
  }
  if (family === 6) {
    const words = hextets(ip);
    // Translation prefixes carry an IPv4 address: judge the address they lead to.
    if (words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)) {
      const inner = classifyAddress(embeddedIpv4(words, 6));
      if (inner) return `NAT64 of a ${inner} address`;
    }
    if (words[0] === 0x2002) {
      const inner = classifyAddress(embeddedIpv4(words, 1));
      if (inner) return `6to4 of a ${inner} address`;
    }
  }
  return undefined;
}

/** RFC 6761: these names are loopback by definition, whatever a resolver says. */
function isLocalhostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

export const MAX_URL_LENGTH = 2048;

const ALLOW_HINT = 'set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow private destinations';

/**
 * Why a webhook URL cannot be accepted, or undefined. Runs without any network access: names
 * other than localhost are judged when they are resolved, at delivery.
 */
export function endpointUrlProblem(raw: string, opts: { allowPrivateNetworks: boolean }): string | undefined {
  if (raw.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `scheme must be http or https (got ${url.protocol.replace(/:$/, '')})`;
  if (url.username || url.password) return 'must not contain credentials (user:password@); authenticate with the webhook signature';
  if (url.hash) return 'must not contain a fragment (#...): it is never sent';
  if (!url.hostname) return 'must have a host';
  if (url.port === '0') return 'port 0 is not a valid destination';
  if (opts.allowPrivateNetworks) return undefined;
  return destinationProblem(url);
}

/** The address rule for a parsed URL's host, without resolving names. */
export function destinationProblem(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) {
    const reason = classifyAddress(host);
    return reason ? `host ${host} is a ${reason} address; ${ALLOW_HINT}` : undefined;
  }
  if (isLocalhostName(host)) return `host ${host} is a loopback name; ${ALLOW_HINT}`;
  return undefined;
}

/** A connection refused by the address rule; `code` lets callers find it in an error's cause chain. */
export class OutboundAddressRefusedError extends Error {
  readonly code = 'EWEBHOOKGUARD';
  constructor(message: string) {
    super(message);
    this.name = 'OutboundAddressRefusedError';
  }
}

export type LookupFunction = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

const systemLookup: LookupFunction = (hostname, options, callback) => dns.lookup(hostname, options, callback);

/**
 * A `lookup` for net/tls.connect (and so for undici's connector) that refuses names resolving to
 * any non-public address. It answers in both shapes Node asks for: all addresses (autoSelectFamily)
 * or the first one.
 */
export function guardedLookup(resolve: LookupFunction = systemLookup) {
  return function lookup(hostname: string, options: dns.LookupOptions, callback: (...args: any[]) => void): void {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      if (!addresses || addresses.length === 0) {
        return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }));
      }
      for (const a of addresses) {
        const reason = classifyAddress(a.address);
        if (reason) {
          return callback(new OutboundAddressRefusedError(`refused: ${hostname} resolves to ${a.address}, a ${reason} address; ${ALLOW_HINT}`));
        }
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
