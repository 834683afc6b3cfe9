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

describe('Kubernetes schema (kubernetes-models)', () => {
  const objects = { dev: loadProfile('dev'), prod: loadProfile('prod') };
  const broken: K8sObject = structuredClone(objects.prod.find((o) => o.kind === 'Deployment')!);
  broken.spec.template.spec.containers[0].resources.limits.memory = '512MB';
  broken.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
  let results: Result[];

  beforeAll(() => {
    results = validate([...objects.dev, ...objects.prod, broken]);
  });

  it.each(['dev', 'prod'] as const)('validates every object of the %s profile', (profile) => {
    const start = profile === 'dev' ? 0 : objects.dev.length;
    const mine = results.slice(start, start + objects[profile].length);
    expect(mine.map((r) => `${r.kind} ${r.name}`)).toEqual(objects[profile].map((o) => `${o.kind} ${o.metadata.name}`));
    expect(mine.filter((r) => r.errors.length > 0)).toEqual([]);
  });

  it('rejects a bad quantity and an unknown enum value (the check has teeth)', () => {
    const [last] = results.slice(-1);
    expect(last.errors.join('\n')).toMatch(/resources\/limits\/memory must match format "quantity"/);
    expect(last.errors.join('\n')).toMatch(/imagePullPolicy must be equal to one of the allowed values/);
  });
});
