import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { ConfigError } from '../config';
import { createSecretBox, generateSecret, requireEncryptionKey, secretKeyBytes, secretProblem } from './secrets';
import { signedHeaders, signatureFor } from './signature';

describe('secrets', () => {
  it('are whsec_ + base64 of 32 random bytes', () => {
    const a = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretKeyBytes(a)).toHaveLength(32);
    expect(generateSecret()).not.toBe(a);
    expect(secretProblem(a)).toBeUndefined();
  });

  it('judges user-supplied secrets', () => {
    expect(secretProblem('abc')).toMatch(/must start with "whsec_"/);
    expect(secretProblem('whsec_not base64!')).toMatch(/standard base64/);
    expect(secretProblem(`whsec_${randomBytes(16).toString('base64')}`)).toMatch(/24 to 64 bytes \(got 16\)/);
    expect(secretProblem(`whsec_${randomBytes(24).toString('base64')}`)).toBeUndefined();
  });

  it('round-trip through AES-256-GCM, bound to their endpoint and key', () => {
    const box = createSecretBox(randomBytes(32));
    const secret = generateSecret();
    const sealed = box.encrypt(secret, 'endpoint-1');
    expect(sealed).not.toContain(secret.slice(6));
    expect(sealed.split('.')).toHaveLength(3);
    expect(box.encrypt(secret, 'endpoint-1')).not.toBe(sealed); // fresh IV every time
    expect(box.decrypt(sealed, 'endpoint-1')).toBe(secret);
    expect(() => box.decrypt(sealed, 'endpoint-2')).toThrow(/cannot decrypt \(was ENCRYPTION_KEY changed\?\)/);
    expect(() => createSecretBox(randomBytes(32)).decrypt(sealed, 'endpoint-1')).toThrow(/cannot decrypt/);
    const [iv, tag, ct] = sealed.split('.');
    const flipped = Buffer.from(ct, 'base64');
    flipped[0] ^= 1;
    expect(() => box.decrypt([iv, tag, flipped.toString('base64')].join('.'), 'endpoint-1')).toThrow(/cannot decrypt/);
    expect(() => box.decrypt('garbage', 'endpoint-1')).toThrow(/malformed/);
  });

  it('the webhook code refuses to run without ENCRYPTION_KEY, saying how to make one', () => {
    expect(() => requireEncryptionKey(undefined)).toThrow(ConfigError);
    expect(() => requireEncryptionKey(undefined)).toThrow(/ENCRYPTION_KEY: required.*openssl rand -base64 32/);
  });
});

describe('Standard Webhooks signatures', () => {
  it('match the reference implementation (standardwebhooks package)', () => {
    const secret = generateSecret();
    const body = JSON.stringify({ type: 'order.paid', data: { id: 1, name: 'Zoë' } });
    const ts = Math.floor(Date.now() / 1000);
    expect(signatureFor(secret, 'msg_1', ts, body)).toBe(new Webhook(secret).sign('msg_1', new Date(ts * 1000), body));
    const headers = signedHeaders({ webhookId: 'msg_1', timestampSeconds: ts, body, secrets: [secret] });
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
  });

  it('carry one v1 signature per live secret, each verifiable on its own', () => {
    const [a, b] = [generateSecret(), generateSecret()];
    const body = '{"x":1}';
    const headers = signedHeaders({ webhookId: 'msg_2', timestampSeconds: Math.floor(Date.now() / 1000), body, secrets: [a, b] });
    expect(headers['webhook-signature']).toMatch(/^v1,\S+ v1,\S+$/);
    expect(new Webhook(a).verify(body, { ...headers })).toEqual({ x: 1 });
    expect(new Webhook(b).verify(body, { ...headers })).toEqual({ x: 1 });
    expect(() => signedHeaders({ webhookId: 'm', timestampSeconds: 1, body, secrets: [] })).toThrow();
  });
});
