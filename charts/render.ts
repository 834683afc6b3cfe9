/**
 * Serialization shared by the Kubernetes and compose outputs: one header, stable ordering, YAML
 * that is byte-for-byte reproducible (no timestamps, no line folding).
 */
import { stringify } from 'yaml';

/**
 * Kinds in apply order: policies before any pod can start, identities and settings before the
 * pods that use them, the migration Job before the Deployments that wait for it.
 */
export const KIND_ORDER: readonly string[] = [
  'NetworkPolicy',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'Service',
  'Job',
  'Deployment',
  'HorizontalPodAutoscaler',
  'ScaledObject',
  'PodDisruptionBudget',
  'PodMonitor',
  'PrometheusRule',
];

export interface KubernetesObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

/** Orders objects by KIND_ORDER, then by name; an unknown kind is a programming error. */
export function sortObjects(objects: readonly KubernetesObject[]): KubernetesObject[] {
  const rank = (o: KubernetesObject) => {
    const i = KIND_ORDER.indexOf(o.kind);
    if (i < 0) throw new Error(`no apply order for kind ${o.kind} (${o.metadata.name}); add it to KIND_ORDER`);
    return i;
  };
  return [...objects].sort((a, b) => rank(a) - rank(b) || (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
}

/** The comment every generated file starts with. */
export function generatedHeader(description: string): string {
  return [
    '# GENERATED FILE: do not edit. Written by `npm run synth` (charts/synth.ts) from the deployment',
    '# model in charts/model/; test/manifests/drift.test.ts fails when this file is stale.',
    `# ${description}`,
    '',
  ].join('\n');
}

function toYaml(value: unknown): string {
  // YAML 1.1 quoting ("no", "on", "1:20" stay strings) for the YAML 1.1 parsers of kubectl and docker-compose.
  return stringify(value, { version: '1.1', lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false });
}

/** A multi-document manifest file. */
export function renderManifest(objects: readonly KubernetesObject[], description: string): string {
  return generatedHeader(description) + sortObjects(objects).map((o) => `---\n${toYaml(o)}`).join('');
}

/** A single-document YAML file. */
export function renderDocument(document: unknown, description: string): string {
  return generatedHeader(description) + toYaml(document);
}
