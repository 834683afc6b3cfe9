/**
 * Every synthesized object type-checks against `kubernetes-types` with excess-property checks:
 * a misspelled field (which the schema validation lets through) is a compile error.
 */
import { typeCheck, type TypeProblem } from './support/kubernetes-types';
import { loadProfile, type K8sObject } from './support/manifests';

describe('Kubernetes types (kubernetes-types)', () => {
  const objects = { dev: loadProfile('dev'), prod: loadProfile('prod') };
  // A copy with two misspellings, compiled in the same program (one compilation keeps it fast).
  const misspelled: K8sObject = structuredClone(objects.prod.find((o) => o.kind === 'Deployment')!);
  misspelled.metadata.name = 'misspelled-copy';
  (misspelled.metadata as Record<string, unknown>).lables = { a: 'b' };
  misspelled.spec.template.spec.containers[0].imagePullPolicyy = 'IfNotPresent';
  let problems: TypeProblem[];

  beforeAll(() => {
    problems = typeCheck([...objects.dev, ...objects.prod, misspelled]);
  });

  it('every dev and prod object compiles as its declared type', () => {
    expect(problems.filter((p) => p.object !== 'Deployment misspelled-copy')).toEqual([]);
  });

  it('reports misspelled fields, naming the object', () => {
    const mine = problems.filter((p) => p.object === 'Deployment misspelled-copy').map((p) => p.message);
    expect(mine).toHaveLength(2);
    expect(mine[0]).toMatch(/'"lables"' does not exist in type 'ObjectMeta'/);
    expect(mine[1]).toMatch(/'"imagePullPolicyy"' does not exist in type 'Container'/);
  });
});
