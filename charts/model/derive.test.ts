import { ENV_KEYS, SECRET_KEYS, SETTING_KEYS } from '../../app/config';
import { createModel, dependencyArgs, heapLimitMiB, resolveEnv, runtimeEnv } from '.';

describe('the app key lists the model uses', () => {
  it('split every key app/config.ts reads into settings and secrets', () => {
    expect([...SETTING_KEYS, ...SECRET_KEYS].sort()).toEqual([...ENV_KEYS].sort());
    expect(SETTING_KEYS).toEqual(expect.arrayContaining(['LOG_LEVEL', 'PORT', 'WORKER_HEALTH_PORT']));
    expect(SETTING_KEYS).not.toContain('DATABASE_URL');
  });
});

describe('heap caps', () => {
  it('leave a quarter of the limit and the young generation outside the old space', () => {
    expect([512, 384, 256].map(heapLimitMiB)).toEqual([360, 264, 168]);
    expect(runtimeEnv({ cpuRequestMillis: 1, memoryRequestMiB: 1, memoryLimitMiB: 1024 })).toEqual({ NODE_OPTIONS: '--max-old-space-size=744 --max-semi-space-size=8', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' });
  });

  it('follow each role’s own limit', () => {
    const model = createModel();
    expect(resolveEnv(model, 'prod', 'api').runtime.NODE_OPTIONS).toBe('--max-old-space-size=360 --max-semi-space-size=8');
    expect(resolveEnv(model, 'prod', 'worker').runtime.NODE_OPTIONS).toBe('--max-old-space-size=264 --max-semi-space-size=8');
  });
});

describe('Redis flags', () => {
  it('cap memory at 75 % of the limit with no eviction, before any args of its own', () => {
    const redis = createModel().devDependencies.redis;
    expect(dependencyArgs(redis)).toEqual(['redis-server', '--maxmemory', '192mb', '--maxmemory-policy', 'noeviction']);
    expect(dependencyArgs({ ...redis, args: ['--save', ''] })).toEqual(['redis-server', '--maxmemory', '192mb', '--maxmemory-policy', 'noeviction', '--save', '']);
    expect(dependencyArgs(createModel().devDependencies.mailpit)).toBeUndefined();
  });
});
