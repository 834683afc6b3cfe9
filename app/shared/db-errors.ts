/**
 * The one place that reads database and Redis errors. Domain code asks two questions:
 * - isUniqueViolation: a unique index refused the row (a name taken, a key raced);
 * - unavailableDependency: the store could not serve the request at all (stopped, restarting,
 *   unreachable, out of pool connections), which is the client's 503, not a bug's 500.
 * Shapes seen with Prisma 7 + @prisma/adapter-pg: P1001 with driverAdapterError kind
 * DatabaseNotReachable (connection refused), P2010 with kind ConnectionClosed (server gone
 * mid-query), plain "timeout exceeded when trying to connect" from pg-pool (no free connection
 * within connectionTimeoutMillis), SQLSTATE 57P0x while the server shuts down or starts.
 */

export type Dependency = 'PostgreSQL' | 'Redis';

interface ErrorShape {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
  meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } };
}

/** Prisma's codes for "cannot reach / lost / timed out / no pool connection". */
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const ADAPTER_UNAVAILABLE = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** SQLSTATE: 08 connection exception, 57P01-03 shutdown / crash / starting up, 53300 too many connections. */
const SQLSTATE_UNAVAILABLE = /^(08...|57P0[1-3]|53300)$/;
const PG_POOL_MESSAGES = /^(timeout exceeded when trying to connect|Connection terminated( unexpectedly| due to connection timeout)?)$/;
const REDIS_MESSAGES = /^(Connection is closed\.|Stream isn't writeable and enableOfflineQueue options is false|Reached the max retries per request limit)/;
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);

function* causes(err: unknown): Generator<ErrorShape> {
  let e = err as ErrorShape | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    yield e;
    e = e.cause as ErrorShape | undefined;
  }
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as ErrorShape;
  return e?.code === 'P2002' || e?.meta?.driverAdapterError?.cause?.originalCode === '23505' || e?.code === '23505';
}

export function unavailableDependency(err: unknown): Dependency | undefined {
  for (const e of causes(err)) {
    const adapter = e.meta?.driverAdapterError?.cause;
    if (typeof e.code === 'string' && PRISMA_UNAVAILABLE.has(e.code)) return 'PostgreSQL';
    if (adapter?.kind && ADAPTER_UNAVAILABLE.has(adapter.kind)) return 'PostgreSQL';
    if (adapter?.originalCode && SQLSTATE_UNAVAILABLE.test(adapter.originalCode)) return 'PostgreSQL';
    if (typeof e.message === 'string' && PG_POOL_MESSAGES.test(e.message)) return 'PostgreSQL';
    if (e.name === 'MaxRetriesPerRequestError' || (typeof e.message === 'string' && REDIS_MESSAGES.test(e.message))) return 'Redis';
    // A bare socket error reaching the HTTP layer comes from pg: Redis errors arrive as above.
    if (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || SQLSTATE_UNAVAILABLE.test(e.code))) return 'PostgreSQL';
  }
  return undefined;
}
