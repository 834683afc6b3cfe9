/**
 * Memory inside the limits, on the committed outputs: every app container's V8 heap is capped
 * (NODE_OPTIONS) from its own memory limit, the same on Kubernetes and compose; the Redis that
 * holds the queues is capped inside its container and never evicts (BullMQ needs noeviction).
 */
import { heapLimitMiB, MALLOC_ENV, PROFILES, SEMI_SPACE_MIB, YOUNG_GENERATION_MIB, type ProfileName } from '../../charts/model';
import { composeBytes, composeService, containersOf, find, loadCompose, loadProfile, ofKind, quantity, type Container } from './support/manifests';

const MiB = 2 ** 20;
const ROLES = ['api', 'worker', 'inbound', 'migrate'] as const;

/** The heap cap a container's NODE_OPTIONS sets, in MiB; fails when there is none. */
function heapCapMiB(nodeOptions: string | undefined, where: string): number {
  const m = /^--max-old-space-size=(\d+) --max-semi-space-size=(\d+)$/.exec(nodeOptions ?? '');
  if (!m) throw new Error(`${where}: NODE_OPTIONS is ${JSON.stringify(nodeOptions)}, not --max-old-space-size=<MiB> --max-semi-space-size=<MiB>`);
  if (Number(m[2]) !== SEMI_SPACE_MIB) throw new Error(`${where}: --max-semi-space-size=${m[2]}, not the model's ${SEMI_SPACE_MIB}`);
  return Number(m[1]);
}

function envValue(c: Container, name: string): string | undefined {
  return (c.env ?? []).find((e: { name: string }) => e.name === name)?.value;
}

/** Every app container of a profile (init containers included), with its memory limit. */
function appContainers(profile: ProfileName): { where: string; role: string; container: Container }[] {
  return ofKind(loadProfile(profile), 'Deployment')
    .concat(ofKind(loadProfile(profile), 'Job'))
    .filter((w) => ROLES.includes(w.spec.template.metadata.labels['app.kubernetes.io/component']))
    .flatMap((w) => {
      const { init, main } = containersOf(w);
      return [...init, ...main].map((container) => ({ where: `k8s/${profile} ${w.metadata.name}/${container.name}`, role: container.name, container }));
    });
}

describe.each(PROFILES)('heap caps (%s)', (profile) => {
  const containers = appContainers(profile);

  it('covers every app container', () => {
    expect(containers.map((c) => c.role).sort()).toEqual(['api', 'inbound', 'migrate', 'migrate-wait', 'migrate-wait', 'migrate-wait', 'worker']);
  });

  it.each(containers.map((c) => [c.where, c] as const))('%s: capped from its own limit, with room outside the heap', (where, { container }) => {
    const limitMiB = quantity(container.resources.limits.memory, 'bytes') / MiB;
    const cap = heapCapMiB(envValue(container, 'NODE_OPTIONS'), where);
    expect(cap).toBe(heapLimitMiB(limitMiB));
    // Young generation on top of the cap, and still at least a fifth of the limit left for Buffers and native memory.
    expect(cap + YOUNG_GENERATION_MIB).toBeLessThanOrEqual(limitMiB * 0.8);
    // glibc malloc bounded as the model says (few arenas, large blocks returned when freed).
    for (const [name, value] of Object.entries(MALLOC_ENV)) expect({ where, name, value: envValue(container, name) }).toEqual({ where, name, value });
  });

  it('compose runs each role with the same heap cap and memory limit as Kubernetes', () => {
    const compose = loadCompose();
    for (const role of ROLES) {
      const k8s = containers.find((c) => c.role === role)!.container;
      const service = composeService(compose, role);
      expect({ role, nodeOptions: service.environment?.NODE_OPTIONS }).toEqual({ role, nodeOptions: envValue(k8s, 'NODE_OPTIONS') });
      for (const name of Object.keys(MALLOC_ENV)) expect({ role, name, value: service.environment?.[name] }).toEqual({ role, name, value: envValue(k8s, name) });
      expect({ role, bytes: composeBytes(service.deploy.resources.limits.memory) }).toEqual({ role, bytes: quantity(k8s.resources.limits.memory, 'bytes') });
    }
  });
});

describe('Redis as BullMQ needs it', () => {
  const compose = composeService(loadCompose(), 'redis');
  const pod = containersOf(find(loadProfile('dev'), 'Deployment', 'easeemail-redis')).main[0];

  /** The value after `flag` in a redis-server argument list. */
  const flag = (args: readonly string[] | undefined, name: string) => {
    const i = (args ?? []).indexOf(name);
    return i >= 0 ? args![i + 1] : undefined;
  };

  it('compose and the dev manifests start redis-server with the same flags', () => {
    expect(compose.command?.[0]).toBe('redis-server');
    expect(pod.args).toEqual(compose.command);
  });

  it('never evicts: --maxmemory-policy noeviction', () => {
    expect(flag(compose.command, '--maxmemory-policy')).toBe('noeviction');
  });

  it('caps its memory below the container limit, with room for fragmentation', () => {
    const maxmemory = /^(\d+)mb$/.exec(flag(compose.command, '--maxmemory') ?? '');
    expect(maxmemory).not.toBeNull();
    const capBytes = Number(maxmemory![1]) * MiB; // redis reads "mb" as 1024 * 1024
    const limitBytes = composeBytes(compose.deploy.resources.limits.memory);
    expect(limitBytes).toBe(quantity(pod.resources.limits.memory, 'bytes'));
    expect(capBytes).toBeGreaterThan(0);
    expect(capBytes).toBeLessThanOrEqual(limitBytes * 0.8);
  });
});
