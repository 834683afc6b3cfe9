/**
 * A deliberately broken deployment model fails at synth, with a message that names the field,
 * before any file is written; the constructs check their own props the same way.
 */
import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { renderCompose } from '../../compose/generate';
import { ServerWorkload } from '../../charts/constructs/server-workload';
import { createModel, resolveEnv } from '../../charts/model';
import { renderAll } from '../../charts/synth';
import { modelWith, synthError } from './support/broken-model';

describe('a broken model fails at synth, naming the field', () => {
  it('the real model synthesizes', () => {
    expect(renderAll(createModel()).size).toBe(10);
  });

  it('a memory limit below the request', () => {
    const error = synthError(modelWith((m) => (m.workloads.api.resources.memoryLimitMiB = 128)));
    expect(error.message).toContain('workloads.api.resources.memoryLimitMiB (128) must not be below workloads.api.resources.memoryRequestMiB (256)');
  });

  it('a probe on a port no container exposes', () => {
    const error = synthError(modelWith((m) => (m.workloads.worker.probes.readiness.port = 'metrics')));
    expect(error.message).toContain('workloads.worker.probes.readiness.port ("metrics") is not a port of the container (declared: health)');
  });

  it('an HPA minimum above its maximum, in the model or in a profile', () => {
    expect(synthError(modelWith((m) => (m.workloads.worker.autoscaling.minReplicas = 25))).message).toContain(
      'workloads.worker.autoscaling.minReplicas (25) must not exceed workloads.worker.autoscaling.maxReplicas (20)',
    );
    const profile = synthError(modelWith((m) => (m.profiles.dev.autoscaling.api = { ...m.workloads.api.autoscaling, minReplicas: 4, maxReplicas: 2 })));
    expect(profile.message).toContain('profiles.dev.autoscaling.api.minReplicas (4) must not exceed profiles.dev.autoscaling.api.maxReplicas (2)');
  });

  it('a backlog target of zero or less ready jobs per replica', () => {
    for (const target of [0, -5]) {
      const error = synthError(modelWith((m) => (m.workloads.worker.autoscaling.backlog = { ...m.workloads.worker.autoscaling.backlog!, readyJobsPerReplica: target })));
      expect(error.message).toContain(`workloads.worker.autoscaling.backlog.readyJobsPerReplica (${target}) must be a positive number`);
    }
  });

  it('a scaling policy that Kubernetes would refuse', () => {
    const error = synthError(modelWith((m) => (m.workloads.worker.autoscaling.behavior.scaleDown.stabilizationWindowSeconds = 7200)));
    expect(error.message).toContain('workloads.worker.autoscaling.behavior.scaleDown.stabilizationWindowSeconds (7200) must be an integer in 0..3600');
  });

  it('a rule naming a metric the app does not export', () => {
    const error = synthError(
      modelWith((m) => {
        const alerts = m.monitoring.rules.alerts as { expr: string }[];
        alerts[0].expr = alerts[0].expr.replace('easeemail:queue_oldest_ready_seconds:max', 'easeemail_queue_oldest_seconds');
      }),
    );
    expect(error.message).toContain('monitoring.rules.alerts[0].expr names "easeemail_queue_oldest_seconds", which the app does not export');
  });

  it('a queue of the contract without a backlog-age threshold', () => {
    const error = synthError(modelWith((m) => delete (m.monitoring.thresholds.backlogAge as Record<string, unknown>)['webhook-delivery']));
    expect(error.message).toContain('monitoring.thresholds.backlogAge["webhook-delivery"] is missing');
  });

  it('a grace period that does not outlast the shutdown deadline', () => {
    const error = synthError(modelWith((m) => (m.workloads.api.terminationGracePeriodSeconds = 25)));
    expect(error.message).toContain('workloads.api.terminationGracePeriodSeconds (25) must exceed sharedConfig.SHUTDOWN_TIMEOUT_MS ("25000" ms)');
  });

  it('probes on a port other than the one the process is told to serve', () => {
    const error = synthError(modelWith((m) => (m.profiles.prod.config.WORKER_HEALTH_PORT = '9001')));
    expect(error.message).toContain('workloads.worker.probes.liveness.port ("health" = 8001) differs from profiles.prod.config.WORKER_HEALTH_PORT ("9001")');
  });

  it('an exec health check with whitespace in an argument (podman splits it)', () => {
    const error = synthError(modelWith((m) => (m.workloads.api.healthcheckCommand = ['easeemail', 'healthcheck api'])));
    expect(error.message).toContain('workloads.api.healthcheckCommand[1] ("healthcheck api") must not contain whitespace');
  });

  it('an untagged third-party image', () => {
    const error = synthError(modelWith((m) => (m.devDependencies.redis.image = 'redis')));
    expect(error.message).toContain('devDependencies.redis.image ("redis") needs a version tag');
  });

  it('lists every problem at once', () => {
    const error = synthError(
      modelWith((m) => {
        m.workloads.api.resources.memoryLimitMiB = 1;
        m.workloads.worker.autoscaling.maxReplicas = 0;
      }),
    );
    expect(error.problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('workloads.api.resources.memoryLimitMiB (1)'),
        expect.stringContaining('workloads.worker.autoscaling.maxReplicas (0) must be a positive integer'),
      ]),
    );
  });

  it('the compose generator refuses it on its own too', () => {
    expect(() => renderCompose(modelWith((m) => (m.workloads.api.resources.memoryLimitMiB = 128)))).toThrow(/workloads\.api\.resources\.memoryLimitMiB/);
  });

  it('the image must name a version: no "latest", no missing tag', () => {
    expect(() => createModel({ image: 'registry.example/easeemail:latest' })).toThrow('image ("registry.example/easeemail:latest") must not use the "latest" tag');
    expect(() => createModel({ image: 'registry.example:5000/easeemail' })).toThrow('image ("registry.example:5000/easeemail") needs an explicit tag');
  });
});

describe('the constructs check their own props', () => {
  it('ServerWorkload names the offending field of its spec', () => {
    const model = createModel();
    const chart = new Chart(new App(), 'test');
    const spec = { ...model.workloads.api, probes: { ...model.workloads.api.probes, liveness: { ...model.workloads.api.probes.liveness, port: 'admin' } } };
    expect(
      () =>
        new ServerWorkload(chart, 'api', {
          spec,
          appName: 'easeemail',
          image: model.image.ref,
          env: resolveEnv(model, 'prod', 'api'),
          envSources: { secret: kplus.Secret.fromSecretName(chart, 'secret', 'easeemail'), config: model.sharedConfig },
          serviceAccount: kplus.ServiceAccount.fromServiceAccountName(chart, 'sa', 'easeemail'),
          runAs: { user: 1000 },
          migrationWait: { args: ['migrate', '--wait'], env: resolveEnv(model, 'prod', 'migrate'), resources: model.workloads.migrate.resources },
          autoscaling: { ...model.workloads.api.autoscaling, minReplicas: 5, maxReplicas: 1 },
          autoscalingPath: 'profiles.test.autoscaling.api',
        }),
    ).toThrow(
      /workloads\.api\.probes\.liveness\.port \("admin"\) is not a port of the container[\s\S]*profiles\.test\.autoscaling\.api\.minReplicas \(5\) must not exceed/,
    );
  });
});
