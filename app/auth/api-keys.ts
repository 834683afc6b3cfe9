/**
 * API keys: `ee_` + 32 random bytes (base64url). Only the SHA-256 digest and a display prefix are
 * stored; the key is shown once, at creation. Look-ups are cached in-process for a few seconds
 * so authentication costs no query on the hot path; revocation therefore takes effect within
 * `cacheTtlMs` on every api replica (immediately on the one that served nothing since).
 */
import { createHash, randomBytes } from 'node:crypto';
import { DEFAULT_APPLICATION_ID, toApplicationContext } from '../applications';
import type { Db } from '../db/client';
import { NotFoundError, UnauthorizedError, ValidationError } from '../errors';
import type { ApplicationContext } from '../shared/application';
import { isScope, PLATFORM_SCOPE, type Scope } from './scopes';

export const KEY_PREFIX = 'ee_';
const DISPLAY_PREFIX_LENGTH = 10;
/** lastUsedAt is a hint for humans; writing it once a minute is plenty. */
const LAST_USED_RESOLUTION_MS = 60_000;

export interface AuthenticatedKey {
  id: string;
  name: string;
  scopes: string[];
  /** The key's application; undefined for platform keys (they name one with X-Application). */
  application?: ApplicationContext & { disabled: boolean };
}

export interface ApiKeySummary {
  id: string;
  /** Null for platform keys. */
  applicationId: string | null;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

function validateScopes(scopes: string[]): Scope[] {
  const bad = scopes.filter((s) => !isScope(s));
  if (scopes.length === 0) throw new ValidationError('at least one scope is required', [{ path: '/scopes', message: 'empty' }]);
  if (bad.length) throw new ValidationError(`unknown scope(s): ${bad.join(', ')}`, [{ path: '/scopes', message: `unknown: ${bad.join(', ')}` }]);
  return [...new Set(scopes)] as Scope[];
}

export function createApiKeyService(deps: { db: Db; cacheTtlMs?: number; now?: () => number }) {
  const { db } = deps;
  const ttl = deps.cacheTtlMs ?? 5_000;
  const now = deps.now ?? Date.now;
  const cache = new Map<string, { key: AuthenticatedKey | null; expires: number }>();
  const lastUsedWritten = new Map<string, number>();

  /**
   * A key of one application (the `default` one when none is given, as before applications
   * existed), or a platform key (scope platform:admin, no application): the database refuses
   * any other combination too (api_keys_application_or_platform).
   */
  async function create(input: { name: string; scopes: string[]; applicationId?: string | null }): Promise<{ key: string; summary: ApiKeySummary }> {
    const name = input.name.trim();
    if (!name) throw new ValidationError('name is required', [{ path: '/name', message: 'empty' }]);
    const scopes = validateScopes(input.scopes);
    const platform = scopes.includes(PLATFORM_SCOPE);
    const applicationId = input.applicationId !== undefined ? input.applicationId : platform ? null : DEFAULT_APPLICATION_ID;
    if (platform && applicationId !== null) {
      throw new ValidationError('a platform key (platform:admin) belongs to no application; it names one per request with X-Application', [{ path: '/applicationId', message: 'must be absent for platform keys' }]);
    }
    if (!platform && applicationId === null) {
      throw new ValidationError('a key needs an application (only platform:admin keys have none)', [{ path: '/applicationId', message: 'required' }]);
    }
    const key = generateApiKey();
    const row = await db.apiKey.create({
      data: { name, scopes, applicationId, keyHash: hashApiKey(key), prefix: key.slice(0, DISPLAY_PREFIX_LENGTH) },
    });
    return { key, summary: toSummary(row) };
  }

  /**
   * Makes sure a key given in configuration (local work, compose) exists as a platform key. A
   * bootstrap key from before applications (an `admin` key) is turned into one.
   */
  async function ensureBootstrapKey(key: string): Promise<void> {
    const keyHash = hashApiKey(key);
    const platform = { scopes: [PLATFORM_SCOPE], applicationId: null };
    await db.apiKey.upsert({
      where: { keyHash },
      create: { name: 'bootstrap', ...platform, keyHash, prefix: key.slice(0, DISPLAY_PREFIX_LENGTH) },
      update: platform,
    });
    cache.clear();
  }

  /** Every key, or one application's keys, oldest first. */
  async function list(filter: { applicationId?: string } = {}): Promise<ApiKeySummary[]> {
    const rows = await db.apiKey.findMany({ where: filter.applicationId ? { applicationId: filter.applicationId } : {}, orderBy: { createdAt: 'asc' } });
    return rows.map(toSummary);
  }

  /** Revokes by id or by display prefix. */
  async function revoke(idOrPrefix: string): Promise<ApiKeySummary> {
    const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrPrefix);
    const rows = await db.apiKey.findMany({ where: isUuid ? { id: idOrPrefix } : { prefix: idOrPrefix } });
    if (rows.length === 0) throw new NotFoundError(`no API key ${idOrPrefix}`);
    if (rows.length > 1) throw new ValidationError(`prefix ${idOrPrefix} matches ${rows.length} keys; use the id`);
    const row = await db.apiKey.update({ where: { id: rows[0].id }, data: { revokedAt: rows[0].revokedAt ?? new Date() } });
    cache.clear();
    return toSummary(row);
  }

  async function authenticate(authorization: string | undefined): Promise<AuthenticatedKey> {
    const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
    if (!match) throw new UnauthorizedError('missing API key: send "Authorization: Bearer <key>"');
    const presented = match[1];
    if (!presented.startsWith(KEY_PREFIX)) throw new UnauthorizedError('invalid API key');
    const keyHash = hashApiKey(presented);
    const t = now();
    let hit = cache.get(keyHash);
    if (!hit || hit.expires <= t) {
      const row = await db.apiKey.findUnique({ where: { keyHash }, include: { application: true } });
      const application = row?.application ? { ...toApplicationContext(row.application), disabled: row.application.disabledAt !== null } : undefined;
      hit = { key: row && !row.revokedAt ? { id: row.id, name: row.name, scopes: row.scopes, application } : null, expires: t + ttl };
      if (ttl > 0) cache.set(keyHash, hit);
    }
    if (!hit.key) throw new UnauthorizedError('invalid or revoked API key');
    const key = hit.key;
    if ((lastUsedWritten.get(key.id) ?? 0) + LAST_USED_RESOLUTION_MS <= t) {
      lastUsedWritten.set(key.id, t);
      void db.apiKey.update({ where: { id: key.id }, data: { lastUsedAt: new Date(t) } }).catch(() => undefined);
    }
    return key;
  }

  return { create, ensureBootstrapKey, list, revoke, authenticate };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;

function toSummary(row: ApiKeySummary & { keyHash?: string }): ApiKeySummary {
  const { id, applicationId, name, prefix, scopes, createdAt, lastUsedAt, revokedAt } = row;
  return { id, applicationId, name, prefix, scopes, createdAt, lastUsedAt, revokedAt };
}
