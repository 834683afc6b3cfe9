/**
 * BullMQ needs Redis to keep every key: with any `maxmemory-policy` other than `noeviction`, a
 * Redis at its memory cap may evict a job key, and that email or webhook waits for the sweep
 * (SWEEP_INTERVAL_MS) instead of going out. The api and the worker warn at start and readiness
 * shows the policy; readiness does not fail for it (the service still works, only slower to
 * recover an evicted job), and a managed Redis that refuses CONFIG GET is simply "unknown".
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log';

export const REQUIRED_EVICTION_POLICY = 'noeviction';

/** The server's maxmemory-policy, or undefined when CONFIG GET is not allowed. */
export async function evictionPolicy(redis: Redis): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    return reply[1];
  } catch {
    return undefined;
  }
}

export function evictionWarning(policy: string | undefined): string | undefined {
  if (policy === undefined || policy === REQUIRED_EVICTION_POLICY) return undefined;
  return `Redis maxmemory-policy is "${policy}": set it to "${REQUIRED_EVICTION_POLICY}", or queued jobs can be evicted at the memory cap and wait for the sweep`;
}

/** Once Redis is connected, logs a warning when its policy can evict job keys. Never throws. */
export function warnUnlessNoEviction(redis: Redis, log: Logger): void {
  const check = async () => {
    const policy = await evictionPolicy(redis);
    const warning = evictionWarning(policy);
    if (warning) log.warn({ maxmemoryPolicy: policy }, warning);
  };
  if (redis.status === 'ready') void check();
  else redis.once('ready', () => void check());
}
