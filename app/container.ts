/**
 * The composition root: builds the shared resources once and registers their close steps with
 * the lifecycle (closed in reverse order). Domain services are plain factories over these.
 */
import type { Redis } from 'ioredis';
import { createApiKeyService, type ApiKeyService } from './auth/api-keys';
import type { Config } from './config';
import { createDb, type Db } from './db/client';
import { createMetrics, type Metrics } from './http/metrics';
import type { Lifecycle } from './lifecycle';
import type { Logger } from './log';
import { createQueues, producerConnection, type Queues } from './queue';

export type Role = 'api' | 'worker';

export interface Container {
  role: Role;
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
  db: Db;
  /** Fail-fast connection for producers, health checks and rate limiting. */
  redis: Redis;
  queues: Queues;
  metrics: Metrics;
  apiKeys: ApiKeyService;
}

export function createContainer(opts: { role: Role; config: Config; log: Logger; lifecycle: Lifecycle }): Container {
  const { role, config, log, lifecycle } = opts;
  const db = createDb(config.databaseUrl, { poolSize: role === 'worker' ? Math.max(10, config.workerConcurrency * 2) : 20 });
  lifecycle.onShutdown('database', () => db.$disconnect());
  const redis = producerConnection(config.redisUrl);
  lifecycle.onShutdown('redis', () => redis.quit().catch(() => redis.disconnect()));
  const queues = createQueues(redis, config.redisPrefix);
  lifecycle.onShutdown('queues', () => queues.close());
  const metrics = createMetrics(role);
  const apiKeys = createApiKeyService({ db, cacheTtlMs: config.apiKeyCacheTtlMs });
  return { role, config, log, lifecycle, db, redis, queues, metrics, apiKeys };
}
