import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';
import { pgSettings } from './connection';

export type Db = PrismaClient;
export { Prisma } from '../generated/prisma/client';

export function createDb(databaseUrl: string, opts: { poolSize?: number } = {}): Db {
  const { pool, schema } = pgSettings(databaseUrl, { max: opts.poolSize ?? 10 });
  return new PrismaClient({ adapter: new PrismaPg(pool, { schema }) });
}
