/**
 * `easeemail wait`: bounded wait until PostgreSQL and Redis answer (container entrypoints, init
 * steps). Reports what it waited for by host and port, never with credentials.
 */
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { pgSettings } from './db/connection';

export interface WaitTarget {
  name: string;
  /** host:port, safe to print. */
  address: string;
  probe(): Promise<void>;
}

function hostPort(url: string, defaultPort: number): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || defaultPort}`;
}

export function postgresTarget(databaseUrl: string): WaitTarget {
  return {
    name: 'PostgreSQL',
    address: hostPort(databaseUrl, 5432),
    async probe() {
      const client = new Client({ ...pgSettings(databaseUrl).pool, connectionTimeoutMillis: 2_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        await client.end().catch(() => undefined);
      }
    },
  };
}

export function redisTarget(redisUrl: string): WaitTarget {
  return {
    name: 'Redis',
    address: hostPort(redisUrl, 6379),
    async probe() {
      const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        await redis.ping();
      } finally {
        redis.disconnect();
      }
    },
  };
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: Error[] };
  if (e?.code) return e.code;
  if (e?.errors?.length) return describe(e.errors[0]);
  return String(e?.message ?? err).split('\n')[0].slice(0, 120);
}

/** Resolves when every target answers; rejects after timeoutMs naming those that did not. */
export async function waitFor(targets: WaitTarget[], timeoutMs: number, log: (msg: string) => void = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Map(targets.map((t) => [t, 'not tried']));
  while (pending.size > 0) {
    await Promise.all(
      [...pending.keys()].map(async (t) => {
        try {
          await t.probe();
          pending.delete(t);
          log(`${t.name} at ${t.address} is up`);
        } catch (err) {
          pending.set(t, describe(err));
        }
      }),
    );
    if (pending.size === 0) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      const what = [...pending].map(([t, why]) => `${t.name} at ${t.address} (${why})`).join(', ');
      throw new Error(`gave up after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(500, left)));
  }
}
