/**
 * Webhook endpoints: CRUD, secrets (HMAC secrets shown on creation and on request; of an ed25519
 * key pair only the public key, ever; stored only encrypted), rotation with a 24 h overlap (also
 * to another signing scheme), and disabling (by a user, by a 410 Gone, or after failing for
 * five days straight), which also fails the endpoint's pending deliveries so their state is
 * visible at once rather than when each one's retry comes due.
 */
import { randomUUID } from 'node:crypto';
import type { Db, Prisma } from '../db/client';
import { ConflictError, NotFoundError } from '../errors';
import type { EndpointCreateInput, EndpointUpdateInput, RotateSecretInput } from './schemas';
import { generateSigningSecret, publicKeyOf, type SecretBox, type SignatureScheme } from './secrets';
import { signerFor } from './signature';

/** How long a rotated-out secret keeps signing alongside the new one. */
export const ROTATION_OVERLAP_MS = 24 * 3600 * 1000;

type EndpointRow = Prisma.WebhookEndpointGetPayload<object>;

export function endpointView(row: EndpointRow) {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.eventTypes,
    enabled: row.enabled,
    disabledAt: row.disabledAt?.toISOString() ?? null,
    disabledReason: row.disabledReason,
    failingSince: row.failingSince?.toISOString() ?? null,
    rateLimit: row.rateLimit,
    signatureScheme: row.signatureScheme as SignatureScheme,
    publicKey: row.publicKey,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export type EndpointView = ReturnType<typeof endpointView>;

/** What GET /secret and a rotation answer: what a receiver needs to verify, never a private key. */
export type SecretView =
  | { signatureScheme: 'hmac-sha256'; secret: string; previousSecretExpiresAt: string | null }
  | { signatureScheme: 'ed25519'; publicKey: string; previousSecretExpiresAt: string | null };

function secretView(secret: string, previousSecretExpiresAt: string | null): SecretView {
  const publicKey = publicKeyOf(secret);
  return publicKey === null ? { signatureScheme: 'hmac-sha256', secret, previousSecretExpiresAt } : { signatureScheme: 'ed25519', publicKey, previousSecretExpiresAt };
}

/** The columns a new current secret sets: its ciphertext, its scheme and (ed25519) its public key. */
function currentSecretColumns(secrets: SecretBox, secret: string, id: string) {
  const publicKey = publicKeyOf(secret);
  return { secretEncrypted: secrets.encrypt(secret, id), signatureScheme: publicKey === null ? 'hmac-sha256' : 'ed25519', publicKey };
}

/**
 * Disables an endpoint and fails its pending deliveries, in one transaction. Returns false when
 * it was already disabled (nothing changed).
 */
export async function disableEndpoint(db: Db, input: { id: string; reason: string; at: Date }): Promise<boolean> {
  const [changed] = await db.$transaction([
    db.webhookEndpoint.updateMany({
      where: { id: input.id, enabled: true },
      data: { enabled: false, disabledAt: input.at, disabledReason: input.reason },
    }),
    db.webhookDelivery.updateMany({
      where: { endpointId: input.id, status: 'pending' },
      data: { status: 'failed', nextAttemptAt: null, lastError: `endpoint disabled: ${input.reason}` },
    }),
  ]);
  return changed.count > 0;
}

export function createEndpointService(deps: { db: Db; secrets: SecretBox; now?: () => number }) {
  const { db, secrets } = deps;
  const now = deps.now ?? Date.now;

  async function find(applicationId: string, id: string): Promise<EndpointRow> {
    const row = await db.webhookEndpoint.findUnique({ where: { id, applicationId } });
    if (!row) throw new NotFoundError(`no webhook endpoint with id ${id}`);
    return row;
  }

  /** The answer carries the secret of an HMAC endpoint; an ed25519 one shows its publicKey (in the view) instead. */
  async function create(applicationId: string, input: EndpointCreateInput): Promise<EndpointView & { secret?: string }> {
    const id = randomUUID();
    const secret = input.secret ?? generateSigningSecret(input.signatureScheme ?? 'hmac-sha256');
    const row = await db.webhookEndpoint.create({
      data: {
        id,
        applicationId,
        url: new URL(input.url).href,
        description: input.description ?? null,
        eventTypes: input.eventTypes,
        enabled: input.enabled,
        rateLimit: input.rateLimit ?? null,
        ...(input.enabled ? {} : { disabledAt: new Date(now()), disabledReason: 'created disabled' }),
        ...currentSecretColumns(secrets, secret, id),
      },
    });
    const view = endpointView(row);
    return view.signatureScheme === 'hmac-sha256' ? { ...view, secret } : view;
  }

  async function list(applicationId: string, input: { limit: number; cursor?: string }): Promise<{ data: EndpointView[]; nextCursor: string | null }> {
    const rows = await db.webhookEndpoint.findMany({
      where: { applicationId },
      take: input.limit + 1,
      // The cursor names a row of this application only: another's id pages like an unknown one.
      ...(input.cursor ? { cursor: { id: input.cursor, applicationId }, skip: 1 } : {}),
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    });
    const page = rows.slice(0, input.limit);
    return { data: page.map(endpointView), nextCursor: rows.length > input.limit ? page[page.length - 1].id : null };
  }

  async function update(applicationId: string, id: string, input: EndpointUpdateInput): Promise<EndpointView> {
    const current = await find(applicationId, id);
    const at = new Date(now());
    if (input.enabled === false && current.enabled) await disableEndpoint(db, { id, reason: 'disabled through the API', at });
    const reenable = input.enabled === true && !current.enabled;
    const row = await db.webhookEndpoint.update({
      where: { id, applicationId },
      data: {
        ...(input.url !== undefined ? { url: new URL(input.url).href } : {}),
        ...(input.eventTypes !== undefined ? { eventTypes: input.eventTypes } : {}),
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.rateLimit !== undefined ? { rateLimit: input.rateLimit } : {}),
        ...(reenable ? { enabled: true, disabledAt: null, disabledReason: null, failingSince: null } : {}),
      },
    });
    return endpointView(row);
  }

  async function remove(applicationId: string, id: string): Promise<void> {
    const { count } = await db.webhookEndpoint.deleteMany({ where: { id, applicationId } });
    if (count === 0) throw new NotFoundError(`no webhook endpoint with id ${id}`);
  }

  function usable(sealed: string, id: string): boolean {
    try {
      signerFor(secrets.decrypt(sealed, id));
      return true;
    } catch {
      return false;
    }
  }

  async function getSecret(applicationId: string, id: string): Promise<SecretView> {
    const row = await find(applicationId, id);
    const overlap = row.previousSecretExpiresAt && row.previousSecretExpiresAt.getTime() > now() ? row.previousSecretExpiresAt : null;
    const previousSecretExpiresAt = overlap?.toISOString() ?? null;
    // An ed25519 endpoint answers the public key its row keeps (written with the key,
    // currentSecretColumns): the private key is neither needed nor decrypted for that.
    if (row.signatureScheme === 'ed25519' && row.publicKey) return { signatureScheme: 'ed25519', publicKey: row.publicKey, previousSecretExpiresAt };
    let secret: string;
    try {
      secret = secrets.decrypt(row.secretEncrypted, id);
    } catch {
      // Not the client's doing, but theirs to repair: a rotation replaces what cannot be read.
      throw new ConflictError(`the signing secret of webhook endpoint ${id} cannot be read (was ENCRYPTION_KEY changed?); rotate it to get a new one`);
    }
    return secretView(secret, previousSecretExpiresAt);
  }

  /**
   * A new secret signs from now on; the current one keeps signing too until the overlap ends,
   * so receivers can switch at their pace. Rotating again within the overlap drops the oldest.
   * With `signatureScheme` the new secret is of that scheme (HMAC ⇄ ed25519); the previous one
   * keeps signing in its own scheme during the overlap (a secret's prefix says how it signs).
   * A current secret that cannot sign (ENCRYPTION_KEY changed, a damaged key) is not kept for the
   * overlap: it would fail every delivery, and rotating is what the failed ones tell users to do.
   */
  async function rotateSecret(applicationId: string, id: string, input: RotateSecretInput = {}): Promise<SecretView> {
    const row = await find(applicationId, id);
    const secret = generateSigningSecret(input.signatureScheme ?? (row.signatureScheme as SignatureScheme));
    const expires = usable(row.secretEncrypted, id) ? new Date(now() + ROTATION_OVERLAP_MS) : null;
    // Compare-and-set on the current ciphertext: of two concurrent rotations one wins, the other is told.
    const { count } = await db.webhookEndpoint.updateMany({
      where: { id, applicationId, secretEncrypted: row.secretEncrypted },
      data: { ...currentSecretColumns(secrets, secret, id), previousSecretEncrypted: expires ? row.secretEncrypted : null, previousSecretExpiresAt: expires },
    });
    if (count === 0) throw new ConflictError(`webhook endpoint ${id} was deleted or rotated concurrently; read its secret again`);
    return secretView(secret, expires?.toISOString() ?? null);
  }

  return { create, list, get: async (applicationId: string, id: string) => endpointView(await find(applicationId, id)), update, remove, getSecret, rotateSecret };
}

export type EndpointService = ReturnType<typeof createEndpointService>;
