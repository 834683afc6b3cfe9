import { isUniqueViolation, unavailableDependency } from './db-errors';

/** The shapes Prisma 7 with @prisma/adapter-pg, pg-pool and ioredis produce (seen in store-outage.test.ts runs). */
const prismaError = (code: string, cause?: Record<string, string>) =>
  Object.assign(new Error('Invalid `prisma.x()` invocation'), { code, meta: cause ? { driverAdapterError: { name: 'DriverAdapterError', cause } } : {} });

describe('database and Redis errors, classified once', () => {
  test.each([
    ['connection refused', prismaError('P1001', { kind: 'DatabaseNotReachable' })],
    ['server gone mid-query', prismaError('P2010', { kind: 'ConnectionClosed' })],
    ['server shutting down', prismaError('P2010', { kind: 'postgres', originalCode: '57P01' })],
    ['server starting up', prismaError('P2010', { kind: 'postgres', originalCode: '57P03' })],
    ['too many connections', prismaError('P2010', { kind: 'TooManyConnections' })],
    ['no free pool connection', new Error('timeout exceeded when trying to connect')],
    ['connect timeout', new Error('Connection terminated due to connection timeout')],
    ['wrapped socket error', new Error('query failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) })],
  ])('%s → PostgreSQL', (_what, err) => {
    expect(unavailableDependency(err)).toBe('PostgreSQL');
  });

  test.each([
    ['offline queue off', new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ['closed connection', new Error('Connection is closed.')],
    ['retries exhausted', Object.assign(new Error('Reached the max retries per request limit (which is 0).'), { name: 'MaxRetriesPerRequestError' })],
  ])('%s → Redis', (_what, err) => {
    expect(unavailableDependency(err)).toBe('Redis');
  });

  test.each([
    ['a unique violation', prismaError('P2002')],
    ['a missing table', prismaError('P2021', { kind: 'TableDoesNotExist', originalCode: '42P01' })],
    ['a plain bug', new TypeError('x is undefined')],
    ['not an error', 'boom'],
    ['nothing', undefined],
  ])('%s is not an outage', (_what, err) => {
    expect(unavailableDependency(err)).toBeUndefined();
  });

  test('unique violations, from Prisma or the driver', () => {
    expect(isUniqueViolation(prismaError('P2002'))).toBe(true);
    expect(isUniqueViolation(prismaError('P2010', { kind: 'UniqueConstraintViolation', originalCode: '23505' }))).toBe(true);
    expect(isUniqueViolation(prismaError('P1001', { kind: 'DatabaseNotReachable' }))).toBe(false);
  });
});
