/**
 * What an API key may do. `admin` implies every other scope within the key's application;
 * `platform:admin` (platform keys, which belong to no application) manages applications and keys,
 * and implies every application scope on the application a request names with X-Application.
 */
export const SCOPES = ['emails:send', 'emails:read', 'templates:manage', 'webhooks:manage', 'events:publish', 'suppressions:manage', 'admin', 'platform:admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const PLATFORM_SCOPE = 'platform:admin' satisfies Scope;

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function hasScope(granted: readonly string[], needed: Scope): boolean {
  if (granted.includes(PLATFORM_SCOPE)) return true;
  return needed !== PLATFORM_SCOPE && (granted.includes('admin') || granted.includes(needed));
}
