/**
 * Every synthesized object validates against the Kubernetes OpenAPI schema through
 * kubernetes-models' `.validate()` (quantities, enums, required fields, types).
 */
import { join } from 'node:path';
import { loadProfile, run, type K8sObject } from './support/manifests';

const VALIDATOR = join(__dirname, 'support', 'validate-kubernetes-models.mjs');

interface Result {
  kind: string;
  name: string;
  errors: string[];
}

/** One ESM process for all objects (kubernetes-models is ESM-only, Jest runs CommonJS). */
function validate(objects: readonly K8sObject[]): Result[] {
  return JSON.parse(run(process.execPath, [VALIDATOR], { input: JSON.stringify(objects) })) as Result[];
}

/** Every directory of objects to apply; KEDA and Prometheus operator objects validate with their own models. */
const DIRS = ['dev', 'prod', 'prod-keda', 'monitoring'] as const;

describe('Kubernetes schema (kubernetes-models, @kubernetes-models/keda, @kubernetes-models/prometheus-operator)', () => {
  const objects = Object.fromEntries(DIRS.map((dir) => [dir, loadProfile(dir)])) as Record<(typeof DIRS)[number], K8sObject[]>;
  const broken: K8sObject = structuredClone(objects.prod.find((o) => o.kind === 'Deployment')!);
  broken.spec.template.spec.containers[0].resources.limits.memory = '512MB';
  broken.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
  const brokenScaledObject: K8sObject = structuredClone(objects['prod-keda'].find((o) => o.kind === 'ScaledObject')!);
  brokenScaledObject.spec.minReplicaCount = 'three';
  delete brokenScaledObject.spec.triggers[0].type;
  const brokenMonitor: K8sObject = structuredClone(objects.monitoring.find((o) => o.kind === 'PodMonitor')!);
  brokenMonitor.spec.podMetricsEndpoints = 'http';
  let results: Result[];

  beforeAll(() => {
    results = validate([...DIRS.flatMap((dir) => objects[dir]), broken, brokenScaledObject, brokenMonitor]);
  });

  it.each(DIRS)('validates every object of k8s/%s', (dir) => {
    const start = DIRS.slice(0, DIRS.indexOf(dir)).reduce((n, d) => n + objects[d].length, 0);
    const mine = results.slice(start, start + objects[dir].length);
    expect(mine.map((r) => `${r.kind} ${r.name}`)).toEqual(objects[dir].map((o) => `${o.kind} ${o.metadata.name}`));
    expect(mine.filter((r) => r.errors.length > 0)).toEqual([]);
  });

  it('the scaling and monitoring objects are really checked (not skipped as unknown kinds)', () => {
    const kinds = new Set(DIRS.flatMap((dir) => objects[dir].map((o) => o.kind)));
    for (const kind of ['ScaledObject', 'PodMonitor', 'PrometheusRule', 'HorizontalPodAutoscaler']) expect(kinds).toContain(kind);
  });

  it('rejects a bad quantity and an unknown enum value (the check has teeth)', () => {
    const [last] = results.slice(-3);
    expect(last.errors.join('\n')).toMatch(/resources\/limits\/memory must match format "quantity"/);
    expect(last.errors.join('\n')).toMatch(/imagePullPolicy must be equal to one of the allowed values/);
  });

  it('rejects a malformed ScaledObject and PodMonitor (the CRD models have teeth too)', () => {
    const [scaledObject, monitor] = results.slice(-2);
    expect(scaledObject.errors.join('\n')).toMatch(/minReplicaCount must be integer/);
    expect(scaledObject.errors.join('\n')).toMatch(/triggers\/0 must have required property '?type'?/);
    expect(monitor.errors.join('\n')).toMatch(/podMetricsEndpoints must be array/);
  });
});
