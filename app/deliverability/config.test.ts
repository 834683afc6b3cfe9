/** The deliverability keys of app/config.ts: BOUNCE_DOMAIN, INBOUND_*, DKIM_*. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config';
import { problemsOf } from '../config.fixture';
import { generateDkimKey } from './dkim';

const base = { DATABASE_URL: 'postgresql://u:p@db:5432/app', REDIS_URL: 'redis://redis:6379', ENCRYPTION_KEY: randomBytes(32).toString('base64') };


describe('deliverability configuration', () => {
  test('defaults: no bounce domain, no DKIM, inbound on 2525 with health on 8002', () => {
    const c = loadConfig(base);
    expect(c.bounceDomain).toBeUndefined();
    expect(c.dkim).toBeUndefined();
    expect(c.inbound).toMatchObject({ port: 2525, healthPort: 8002, maxMessageBytes: 10 * 1024 * 1024, tls: undefined });
  });

  test('BOUNCE_DOMAIN: a domain name, lower-cased; it needs ENCRYPTION_KEY', () => {
    expect(loadConfig({ ...base, BOUNCE_DOMAIN: 'Bounces.Example.com' }).bounceDomain).toBe('bounces.example.com');
    expect(problemsOf({ ...base, BOUNCE_DOMAIN: 'not a domain' })[0]).toMatch(/^BOUNCE_DOMAIN: must be a domain name/);
    expect(problemsOf({ ...base, ENCRYPTION_KEY: undefined, BOUNCE_DOMAIN: 'bounces.example.com' })).toEqual(['BOUNCE_DOMAIN: needs ENCRYPTION_KEY (the return-path tags are keyed from it)']);
  });

  test('DKIM: all three keys or none; the key from DKIM_PRIVATE_KEY_FILE', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dkim-'));
    try {
      const file = path.join(dir, 'dkim.pem');
      writeFileSync(file, generateDkimKey('ed25519'));
      const c = loadConfig({ ...base, DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY_FILE: file });
      expect(c.dkim).toMatchObject({ domain: 'example.com', selector: 's1', algorithm: 'ed25519-sha256' });
      expect(problemsOf({ ...base, DKIM_DOMAIN: 'example.com' })).toEqual(['DKIM_DOMAIN: DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY go together: set all three or none']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad DKIM key is a configuration error that never shows the key', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const problems = problemsOf({ ...base, DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: weak });
    expect(problems).toEqual(['DKIM_PRIVATE_KEY: is an RSA key of 1024 bits; DKIM needs at least 2048']);
    expect(problemsOf({ ...base, DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: 'secret-looking garbage' }).join()).not.toContain('garbage');
  });

  test('inbound TLS files: both or neither, and readable', () => {
    expect(problemsOf({ ...base, INBOUND_TLS_CERT_FILE: '/nonexistent/cert.pem' })).toEqual(
      expect.arrayContaining(['INBOUND_TLS_CERT_FILE: cannot read /nonexistent/cert.pem (ENOENT)']),
    );
  });
});
