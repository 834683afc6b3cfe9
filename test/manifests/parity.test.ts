/**
 * Parity: api, worker and migrate run the same way under Kubernetes and compose: same image and
 * arguments, same environment names (and settings), same memory limit, same health endpoint.
 * Compared on the committed outputs, not on the model they come from.
 */
import type { ComposeService } from '../../compose/generate';
import type { ProfileName } from '../../charts/model';
import { composeBytes, composeService, envNames, find, loadCompose, loadProfile, ofKind, podSpec, quantity, roleContainer, type Container, type K8sObject } from './support/manifests';

/** The app's exec health check (`easeemail healthcheck <role>`) GETs /health/live on this setting's port. */
const HEALTH_PORT_SETTING = { api: 'PORT', worker: 'WORKER_HEALTH_PORT', inbound: 'INBOUND_HEALTH_PORT' } as const;
/** Secret keys only the dev stack references (the local bootstrap API key). */
const DEV_ONLY = ['BOOTSTRAP_API_KEY'];

function k8sContainer(objects: K8sObject[], role: 'api' | 'worker' | 'inbound' | 'migrate'): Container {
  return role === 'migrate' ? roleContainer(ofKind(objects, 'Job')[0], 'migrate') : roleContainer(find(objects, 'Deployment', `easeemail-${role}`), role);
}

describe.each(['dev', 'prod'] as ProfileName[])('parity of compose with Kubernetes (%s)', (profile) => {
  const objects = loadProfile(profile);
  const compose = loadCompose();
  const expectedNames = (service: ComposeService) =>
    Object.keys(service.environment ?? {})
      .filter((name) => profile === 'dev' || !DEV_ONLY.includes(name))
      .sort();

  describe.each(['api', 'worker', 'inbound', 'migrate'] as const)('%s', (role) => {
    const container = k8sContainer(objects, role);
    const service = composeService(compose, role);

    it('runs the same image with the same arguments', () => {
      expect(service.image).toBe(container.image);
      expect(service.command).toEqual(container.args);
      expect(container.command).toBeUndefined(); // the image's ENTRYPOINT stays in charge
    });

    it('receives the same environment names', () => {
      expect(envNames(container)).toEqual(expectedNames(service));
    });

    it('has the same memory limit', () => {
      expect(composeBytes(service.deploy.resources.limits.memory)).toBe(quantity(container.resources.limits.memory, 'bytes'));
    });

    if (role === 'migrate') {
      it('is a one-shot on both sides: no probes, no health check', () => {
        expect([container.livenessProbe, container.readinessProbe, container.startupProbe]).toEqual([undefined, undefined, undefined]);
        expect(service.healthcheck).toEqual({ disable: true });
      });
      return;
    }

    it('checks the same health endpoint', () => {
      const probe = container.livenessProbe.httpGet;
      expect(probe.path).toBe('/health/live');
      expect(service.healthcheck).toMatchObject({ test: ['CMD', 'easeemail', 'healthcheck', role] });
      // `healthcheck <role>` probes /health/live on the port its setting names; compose sets it to the probed port.
      expect(service.environment?.[HEALTH_PORT_SETTING[role]]).toBe(String(probe.port));
    });

    it('gets the same grace period to shut down', () => {
      const deployment = find(objects, 'Deployment', `easeemail-${role}`);
      expect(service.stop_grace_period).toBe(`${podSpec(deployment).terminationGracePeriodSeconds}s`);
    });
  });
});

// Compose is the dev stack: its settings are the dev profile's (prod's differ on purpose).
it('the dev settings in compose equal the dev ConfigMap', () => {
  const config = find(loadProfile('dev'), 'ConfigMap', 'easeemail-config').data as Record<string, string>;
  const api = composeService(loadCompose(), 'api').environment ?? {};
  expect(Object.keys(config).length).toBeGreaterThan(0);
  for (const [key, value] of Object.entries(config)) expect({ key, value: api[key] }).toEqual({ key, value });
});
