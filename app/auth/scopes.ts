/** What an API key may do. `admin` implies every other scope. */
export const SCOPES = ['emails:send', 'emails:read', 'templates:manage', 'webhooks:manage', 'events:publish', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function hasScope(granted: readonly string[], needed: Scope): boolean {
  return granted.includes('admin') || granted.includes(needed);
}
