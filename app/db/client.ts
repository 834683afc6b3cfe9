import { setFlagsFromString } from 'node:v8';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';
import { pgSettings } from './connection';

export type Db = PrismaClient;
export { Prisma } from '../generated/prisma/client';

/**
 * Prisma 7 turns each new query shape into a plan with its query compiler, a 3.4 MB WebAssembly
 * module compiled on the client's first query; plans are cached (queryPlanCacheMaxSize), so the
 * compiler runs once per shape, not per request. V8 compiles Wasm with its baseline compiler
 * (Liftoff) and by default recompiles the functions that run often with TurboFan in background
 * threads: for this module that cost about 45 MB of resident memory per process, mostly a malloc
 * arena of the compile threads that stays resident (api and worker at idle 170 → 125 MB RSS;
 * bench:email peak api 228 → 182 MB, worker 182 → 140 MB). The trade: Wasm stays on Liftoff code
 * in the whole process, so a plan compile and undici's HTTP parser (also Wasm, in the worker) run
 * slower; together under 2 % of either role's CPU in bench:webhooks' profile. The flags are read
 * when a module is compiled, so the process entry point (main.ts) sets them before any PrismaClient
 * runs a query (NODE_OPTIONS does not accept them). JavaScript is not affected.
 */
export function keepWasmOnBaselineCode(): void {
  setFlagsFromString('--no-wasm-tier-up');
  setFlagsFromString('--no-wasm-dynamic-tiering');
}

export function createDb(databaseUrl: string, opts: { poolSize?: number } = {}): Db {
  const { pool, schema } = pgSettings(databaseUrl, { max: opts.poolSize ?? 10 });
  return new PrismaClient({ adapter: new PrismaPg(pool, { schema }) });
}
