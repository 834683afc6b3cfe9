/**
 * Receiver-side verification of Standard Webhooks `v1a` (ed25519) signatures, as the README shows
 * it: node:crypto only, the public key imported from the raw bytes of `whpk_` as a JWK, nothing
 * of the service's signing code. (The standardwebhooks package, 1.1.1 being its latest version,
 * verifies `v1` only and skips `v1a` entries.)
 */
import { createPublicKey, verify } from 'node:crypto';

const PUBLIC_KEY_PREFIX = 'whpk_';

/** True when one of the header's `v1a` signatures verifies with the public key over "id.timestamp.body". */
export function verifiesV1a(publicKey: string, body: string, headers: Record<string, string>): boolean {
  if (!publicKey.startsWith(PUBLIC_KEY_PREFIX)) throw new Error(`not a public key: ${publicKey.slice(0, 8)}…`);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey.slice(PUBLIC_KEY_PREFIX.length), 'base64').toString('base64url') }, format: 'jwk' });
  const signed = Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`);
  return (headers['webhook-signature'] ?? '').split(' ').some((entry) => {
    const [version, signature] = entry.split(',');
    return version === 'v1a' && signature !== undefined && verify(null, signed, key, Buffer.from(signature, 'base64'));
  });
}

/** The versions of the header's signatures, in order: e.g. ['v1a', 'v1'] during a rotation from HMAC. */
export const signatureVersions = (headers: Record<string, string>) => (headers['webhook-signature'] ?? '').split(' ').map((entry) => entry.split(',')[0]);
