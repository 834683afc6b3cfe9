// Validates Kubernetes objects with kubernetes-models' `.validate()` (the Kubernetes OpenAPI
// schemas compiled to ajv validators: quantities, enums, required fields, types).
//
// Why a separate ESM process: kubernetes-models 5 ships ES modules only (its package exports
// have no "require" condition), and Jest runs the suites as CommonJS. Node 20 loads it fine as
// ESM, so the test runs this script once with every object on stdin.
//
// stdin:  JSON array of objects
// stdout: JSON array, one entry per object: { kind, name, errors: string[] }
import { readFileSync } from 'node:fs';

/** Custom resources: the model packages of their operators (same layout, by API group). */
const CRD_PACKAGES = { 'keda.sh': '@kubernetes-models/keda', 'monitoring.coreos.com': '@kubernetes-models/prometheus-operator' };

/** `apps/v1` → `apps/v1`, `v1` → `v1`: kubernetes-models' module layout follows apiVersion. */
async function modelFor(apiVersion, kind) {
  const crdPackage = CRD_PACKAGES[apiVersion.split('/')[0]];
  const mod = await import(crdPackage ? `${crdPackage}/${apiVersion}/${kind}` : `kubernetes-models/${apiVersion}/${kind}`);
  const Model = mod[kind];
  if (typeof Model !== 'function') throw new Error(`kubernetes-models has no ${apiVersion} ${kind}`);
  return Model;
}

const objects = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const object of objects) {
  const name = object?.metadata?.name ?? '(unnamed)';
  const entry = { kind: object?.kind, name, errors: [] };
  try {
    const Model = await modelFor(object.apiVersion, object.kind);
    new Model(object).validate();
  } catch (err) {
    entry.errors.push(String(err?.message ?? err));
  }
  results.push(entry);
}
process.stdout.write(JSON.stringify(results));
