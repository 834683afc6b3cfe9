import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify';
import MailComposer from 'nodemailer/lib/mail-composer';
import { dkimDnsRecord, generateDkimKey, isInDomain, parseDkimKey, signMessage, type DkimSettings } from './dkim';

async function compose(): Promise<Buffer> {
  return new MailComposer({
    from: '"Shop" <shop@Example.com>',
    to: 'jane@example.org',
    subject: 'Your   order  shipped',
    text: 'It is on its way.  \r\nTrailing spaces and a long line '.repeat(20),
    html: '<p>It is on its way.</p>',
    headers: { 'X-EaseEmail-Id': '5c1ad3b4-1111-4222-8333-444455556666' },
  })
    .compile()
    .build();
}

function settingsFor(type: 'rsa' | 'ed25519'): DkimSettings {
  const parsed = parseDkimKey(generateDkimKey(type));
  if ('problem' in parsed) throw new Error(parsed.problem);
  return { ...parsed, domain: 'example.com', selector: 'ease2026' };
}

/** mailauth looks the key up through this resolver: no DNS query leaves the machine. */
function resolverFor(settings: DkimSettings) {
  const { name, value } = dkimDnsRecord(settings);
  return async (host: string, type: string) => {
    if (type === 'TXT' && host.toLowerCase() === name) return [[value]];
    throw Object.assign(new Error(`no ${type} ${host}`), { code: 'ENOTFOUND' });
  };
}

async function verify(message: Buffer, settings: DkimSettings) {
  const result = await dkimVerify(message, { resolver: resolverFor(settings) });
  return result.results.map((r: { status: { result: string }; signingDomain: string }) => ({ result: r.status.result, domain: r.signingDomain }));
}

describe('DKIM signing', () => {
  test.each(['rsa', 'ed25519'] as const)('a %s-signed message verifies with mailauth; a changed body does not', async (type) => {
    const settings = settingsFor(type);
    const signed = signMessage(await compose(), settings);
    expect(signed.toString()).toMatch(/^DKIM-Signature: v=1; a=(rsa|ed25519)-sha256; c=relaxed\/relaxed; d=example.com; s=ease2026;/);
    expect(await verify(signed, settings)).toEqual([{ result: 'pass', domain: 'example.com' }]);

    const tampered = Buffer.from(signed.toString('latin1').replace('It is on its way.', 'It is on its way!'), 'latin1');
    expect((await verify(tampered, settings))[0].result).not.toBe('pass');
    const resubjected = Buffer.from(signed.toString('latin1').replace(/^Subject: .*$/m, 'Subject: Pay now'), 'latin1');
    expect((await verify(resubjected, settings))[0].result).not.toBe('pass');
  });

  test('relaxed canonicalisation survives the whitespace changes relays make', async () => {
    const settings = settingsFor('rsa');
    const signed = signMessage(await compose(), settings).toString('latin1');
    const relayed = signed.replace(/^Subject: (.*)$/m, 'Subject:   $1   ').replace(/It is on its way\./g, 'It is on its    way.');
    expect(await verify(Buffer.from(relayed, 'latin1'), settings)).toEqual([{ result: 'pass', domain: 'example.com' }]);
  });

  test('keys: RSA below 2048 bits, other key types and non-keys are refused with a reason', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(parseDkimKey(small)).toEqual({ problem: 'is an RSA key of 1024 bits; DKIM needs at least 2048' });
    expect(parseDkimKey(ec)).toEqual({ problem: 'is a ec key; use RSA (2048 bits) or Ed25519' });
    expect(parseDkimKey('not a key')).toHaveProperty('problem');
    const oneLine = generateDkimKey('ed25519').replace(/\n/g, '\\n');
    expect(parseDkimKey(oneLine)).toHaveProperty('algorithm', 'ed25519-sha256');
  });

  test('the DNS record: RSA split into 255-character strings, Ed25519 the raw 32-byte key', () => {
    const rsa = dkimDnsRecord(settingsFor('rsa'));
    expect(rsa.name).toBe('ease2026._domainkey.example.com');
    expect(rsa.value).toMatch(/^v=DKIM1; k=rsa; p=MIIBIjAN[A-Za-z0-9+/=]+$/);
    expect(rsa.zoneLine).toMatch(/^ease2026\._domainkey\.example\.com\. IN TXT \( "v=DKIM1; k=rsa; p=.{237}" ".+" \)$/);
    const ed = dkimDnsRecord(settingsFor('ed25519'));
    expect(Buffer.from(ed.value.split('p=')[1], 'base64')).toHaveLength(32);
  });

  test('signing domain match', () => {
    expect(isInDomain('"Shop" <shop@Example.COM>', 'example.com')).toBe(true);
    expect(isInDomain('shop@mail.example.com', 'example.com')).toBe(false);
  });
});
