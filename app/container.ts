/**
 * The infrastructure of one process, built once by its role's root (app/api.ts,
 * app/worker/index.ts): configuration, log, lifecycle, PostgreSQL, Redis, the queues and the
 * metrics registry. Each resource registers its close step with the lifecycle (closed in reverse
 * order). Services are not built here: the roots build them from these and pass each factory
 * exactly what it uses.
 */
import type { Redis } from 'ioredis';
import { Pool } from 'pg';
import type { Config } from './config';
import { createDb, type Db } from './db/client';
import { statementPoolSettings } from './db/connection';
import { createMetrics, type Metrics } from './http/metrics';
import type { Lifecycle } from './lifecycle';
import type { Logger } from './log';
import { createQueues, producerConnection, type Queues } from './queue';

export interface Container {
  /** The role's name (api, worker, ...): the `role` label of every metric. */
  role: string;
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
  /** Prisma over a pool of the size the root asked for. */
  db: Db;
  /** Fail-fast connection for producers, health checks and rate limiting. */
  redis: Redis;
  queues: Queues;
  metrics: Metrics;
  /**
   * Opens a small node-postgres pool of its own, beside Prisma's, for a hot path that runs
   * prepared statements without the ORM layer (webhook delivery: delivery-store.ts). Closed
   * with the lifecycle, after everything registered later (the queue workers using it).
   */
  openStatementPool(name: string, max: number): Pool;
}

export function createContainer(opts: { role: string; config: Config; log: Logger; lifecycle: Lifecycle; dbPoolSize?: number }): Container {
  const { role, config, log, lifecycle } = opts;
  const db = createDb(config.databaseUrl, { poolSize: opts.dbPoolSize ?? 10 });
  lifecycle.onShutdown('database', () => db.$disconnect());
  const redis = producerConnection(config.redisUrl);
  lifecycle.onShutdown('redis', () => redis.quit().catch(() => redis.disconnect()));
  const queues = createQueues(redis, config.redisPrefix);
  lifecycle.onShutdown('queues', () => queues.close());
  const metrics = createMetrics(role);

  function openStatementPool(name: string, max: number): Pool {
    const pool = new Pool(statementPoolSettings(config.databaseUrl, max));
    pool.on('error', (err) => log.warn({ err, pool: name }, 'database pool error'));
    lifecycle.onShutdown(`${name} database pool`, () => pool.end());
    return pool;
  }

  return { role, config, log, lifecycle, db, redis, queues, metrics, openStatementPool };
}
