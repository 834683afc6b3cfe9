/**
 * More broken models (see broken-model.test.ts): environment names that the app does not read,
 * store credentials that do not match a workload's peers, and memory settings that break the
 * derived heap cap or the Redis policy BullMQ needs. Each fails at synth, naming the field.
 */
import type { DeploymentModel } from '../../charts/model';
import { modelWith, synthError } from './support/broken-model';

/** Every problem synth reports for the model, one a line. */
const synthProblems = (model: DeploymentModel) => synthError(model).problems.join('\n');

describe('a broken model fails at synth, naming the env key', () => {
  it('a misspelled setting in sharedConfig', () => {
    const problems = synthProblems(modelWith((m) => ((m.sharedConfig as Record<string, string>).LOG_LEVLE = 'debug')));
    expect(problems).toContain('sharedConfig.LOG_LEVLE ("LOG_LEVLE") is not a key app/config.ts reads (the app would silently ignore it)');
  });

  it('a misspelled setting in a profile', () => {
    const problems = synthProblems(modelWith((m) => ((m.profiles.dev.config as Record<string, string>).WORKER_CONCURENCY = '4')));
    expect(problems).toContain('profiles.dev.config.WORKER_CONCURENCY ("WORKER_CONCURENCY") is not a key app/config.ts reads');
  });

  it('a misspelled key in a workload env', () => {
    const problems = synthProblems(modelWith((m) => ((m.workloads.worker.env.config as string[]).push('SMTP_POOL_SIZ'))));
    expect(problems).toMatch(/workloads\.worker\.env\.config\[\d+\] \("SMTP_POOL_SIZ"\) is not a key app\/config\.ts reads/);
    const secret = synthProblems(modelWith((m) => ((m.workloads.api.env.secrets as string[]).push('ENCRYPTION_KYE'))));
    expect(secret).toMatch(/workloads\.api\.env\.secrets\[\d+\] \("ENCRYPTION_KYE"\) is not a secret key of app\/config\.ts/);
  });

  it('a secret written into the ConfigMap, and a setting the model gives no value', () => {
    const asSetting = synthProblems(modelWith((m) => ((m.sharedConfig as Record<string, string>).DATABASE_URL = 'postgresql://x@y/z')));
    expect(asSetting).toContain('sharedConfig.DATABASE_URL ("DATABASE_URL") is a secret in app/config.ts SECRET_KEYS: it belongs in env.secrets');
    const unset = synthProblems(modelWith((m) => ((m.workloads.api.env.config as string[]).push('SMTP_POOL_SIZE'))));
    expect(unset).toMatch(/workloads\.api\.env\.config\[\d+\] \("SMTP_POOL_SIZE"\) has no value in sharedConfig/);
  });

  it('a profile override of a key sharedConfig does not set', () => {
    const problems = synthProblems(modelWith((m) => ((m.profiles.prod.config as Record<string, string>).SMTP_POOL_SIZE = '8')));
    expect(problems).toContain('profiles.prod.config.SMTP_POOL_SIZE overrides nothing: set SMTP_POOL_SIZE in sharedConfig first');
  });

  it('a store URL given without the store as a peer, and a peer without its URL', () => {
    const extra = synthProblems(modelWith((m) => ((m.workloads.migrate.env.secrets as string[]).push('REDIS_URL'))));
    expect(extra).toContain('workloads.migrate.env.secrets has REDIS_URL but workloads.migrate.peers has no "redis" (a credential it cannot use)');
    const missing = synthProblems(modelWith((m) => ((m.workloads.migrate.peers as string[]).push('redis'))));
    expect(missing).toContain('workloads.migrate.peers has "redis" but workloads.migrate.env.secrets has no REDIS_URL');
  });
});

describe('a broken model fails at synth, naming the memory field', () => {
  it('a memory limit too small for the derived heap cap', () => {
    const problems = synthProblems(
      modelWith((m) => {
        m.workloads.migrate.resources.memoryRequestMiB = 96;
        m.workloads.migrate.resources.memoryLimitMiB = 96;
      }),
    );
    expect(problems).toContain('workloads.migrate.resources.memoryLimitMiB (96) leaves a V8 heap of 48 MiB (heapLimitMiB); the app needs at least 64');
  });

  it('a Redis stand-in without its memory cap, or with an evicting policy', () => {
    expect(synthProblems(modelWith((m) => delete m.devDependencies.redis.redisServer))).toContain(
      'devDependencies.redis.redisServer is required: the queues need --maxmemory with --maxmemory-policy noeviction',
    );
    expect(synthProblems(modelWith((m) => (m.devDependencies.redis.redisServer = { maxMemoryPercent: 75, maxMemoryPolicy: 'allkeys-lru' as 'noeviction' })))).toContain(
      'devDependencies.redis.redisServer.maxMemoryPolicy ("allkeys-lru") must be "noeviction": BullMQ loses an evicted job',
    );
    expect(synthProblems(modelWith((m) => (m.devDependencies.redis.redisServer = { maxMemoryPercent: 100, maxMemoryPolicy: 'noeviction' })))).toContain(
      'devDependencies.redis.redisServer.maxMemoryPercent (100) must be an integer in 10..90',
    );
  });
});
