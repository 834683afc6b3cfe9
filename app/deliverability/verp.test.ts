import { randomBytes, randomUUID } from 'node:crypto';
import { createVerp, deriveVerpKey, verpTag } from './verp';

const key = deriveVerpKey(randomBytes(32));
const verp = createVerp({ key, domain: 'Bounces.Example.com' });

describe('VERP return path', () => {
  test('round-trips an email id, whatever the case the MTA gives back', () => {
    const id = randomUUID();
    const address = verp.returnPath(id);
    expect(address).toMatch(/^bounces\+[0-9a-f-]{36}\.[a-z2-7]{16}@bounces\.example\.com$/);
    expect(address.split('@')[0].length).toBeLessThanOrEqual(64);
    expect(verp.parse(address)).toEqual({ emailId: id });
    expect(verp.parse(`<${address.toUpperCase()}>`)).toEqual({ emailId: id });
  });

  test('refuses a forged, missing or swapped tag', () => {
    const id = randomUUID();
    const other = randomUUID();
    const [local, domain] = verp.returnPath(id).split('@');
    const forged = `${local.slice(0, -1)}${local.endsWith('a') ? 'b' : 'a'}@${domain}`;
    expect(verp.parse(forged)).toEqual({ problem: 'bad_tag' });
    expect(verp.parse(`bounces+${id}@${domain}`)).toEqual({ problem: 'not_verp' });
    expect(verp.parse(`bounces+${id}.@${domain}`)).toEqual({ problem: 'bad_tag' });
    expect(verp.parse(`bounces+${other}.${verpTag(key, id)}@${domain}`)).toEqual({ problem: 'bad_tag' });
    expect(verp.parse(`postmaster@${domain}`)).toEqual({ problem: 'not_verp' });
    expect(verp.parse(verp.returnPath(id).replace(domain, 'elsewhere.example'))).toEqual({ problem: 'not_bounce_domain' });
  });

  test('another ENCRYPTION_KEY issues other tags', () => {
    const id = randomUUID();
    const theirs = createVerp({ key: deriveVerpKey(randomBytes(32)), domain: 'bounces.example.com' });
    expect(verp.parse(theirs.returnPath(id))).toEqual({ problem: 'bad_tag' });
  });
});
