/**
 * `npm run synth`: the one script that writes every generated deployment file from the model:
 *
 *   k8s/dev/*.k8s.yaml        EaseEmail + in-cluster PostgreSQL, Redis and mail catcher, dev Secret
 *   k8s/prod/*.k8s.yaml       EaseEmail; references the Secret the operator creates; the worker's
 *                             HPA scales on CPU and on ready jobs (External metric)
 *   k8s/prod-keda/*.k8s.yaml  the same, the worker scaled by a KEDA ScaledObject instead
 *   k8s/monitoring/           PodMonitors, PrometheusRule, dashboard ConfigMap (Prometheus operator)
 *   k8s/addons/               configuration for other tools: prometheus-adapter rules, the plain
 *                             Prometheus rule file, the Grafana dashboard JSON
 *   compose/compose.yaml      the local stack (+ compose/prometheus.yaml, its monitoring profile)
 *
 * Usage: tsx charts/synth.ts [--out DIR]
 *   --out DIR   write under DIR instead of the repository root (the drift test uses it)
 * Environment: EASEEMAIL_IMAGE overrides the image (default easeemail:<package.json version>).
 * The committed files use the default.
 *
 * Output is deterministic: same model, same bytes. Stale *.k8s.yaml files in the profile
 * directories are removed.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderCompose } from '../compose/generate';
import { kubernetesManifests } from './main';
import type { BacklogScaler, DeploymentModel } from './model';
import { createModel, PROFILES } from './model';
import { adapterConfig, composePrometheusConfig, dashboardJson, monitoringManifests, ruleFile } from './monitoring/chart';
import { renderDocument, renderManifest } from './render';

export const REPO_ROOT = resolve(__dirname, '..');
export const COMPOSE_FILE = 'compose/compose.yaml';
/** The plain rule file: for Prometheus without the operator, and mounted by compose's Prometheus. */
export const RULE_FILE = 'k8s/addons/prometheus/easeemail.rules.yaml';
export const COMPOSE_PROMETHEUS_CONFIG = 'compose/prometheus.yaml';
/** Where compose's Prometheus finds the rule file (mounted there from RULE_FILE). */
export const COMPOSE_RULE_PATH = '/etc/prometheus/rules/easeemail.rules.yaml';

/** Directories of Kubernetes objects to apply (stale *.k8s.yaml in them are removed). */
export const MANIFEST_DIRS = [...PROFILES, 'prod-keda', 'monitoring'] as const;

/** The model with the worker's backlog scaler replaced: the KEDA rendering of prod. */
export function withBacklogScaler(model: DeploymentModel, scaler: BacklogScaler): DeploymentModel {
  const worker = model.workloads.worker;
  if (!worker.autoscaling.backlog) throw new Error('workloads.worker.autoscaling.backlog is unset: there is no backlog scaler to replace');
  return {
    ...model,
    workloads: { ...model.workloads, worker: { ...worker, autoscaling: { ...worker.autoscaling, backlog: { ...worker.autoscaling.backlog, scaler } } } },
  };
}

/** Relative path → file contents, for every generated file. */
export function renderAll(model: DeploymentModel): Map<string, string> {
  const files = new Map<string, string>();
  for (const profile of PROFILES) {
    for (const [file, objects] of Object.entries(kubernetesManifests(model, profile))) {
      files.set(`k8s/${profile}/${file}`, renderManifest(objects, `Kubernetes, profile "${profile}": kubectl apply -f k8s/${profile}`));
    }
  }
  for (const [file, objects] of Object.entries(kubernetesManifests(withBacklogScaler(model, 'keda'), 'prod'))) {
    files.set(`k8s/prod-keda/${file}`, renderManifest(objects, 'Kubernetes, profile "prod" with the worker scaled by KEDA (no HPA of its own): kubectl apply -f k8s/prod-keda'));
  }
  files.set(
    'k8s/monitoring/easeemail-monitoring.k8s.yaml',
    renderManifest(monitoringManifests(model), 'PodMonitors, PrometheusRule, Grafana dashboard ConfigMap (needs the Prometheus operator\'s CRDs): kubectl apply -f k8s/monitoring'),
  );
  files.set(RULE_FILE, renderDocument(ruleFile(model), 'Prometheus rule file (the PrometheusRule\'s groups, for a Prometheus without the operator): rule_files: [easeemail.rules.yaml]'));
  files.set(
    'k8s/addons/prometheus-adapter/external-rules.yaml',
    renderDocument(adapterConfig(model), 'prometheus-adapter: merge into its config file (externalRules:) or Helm values (rules.external:); serves the worker HPA\'s External metric'),
  );
  files.set('k8s/addons/grafana/easeemail-dashboard.json', dashboardJson(model));
  files.set(COMPOSE_PROMETHEUS_CONFIG, renderDocument(composePrometheusConfig(model, COMPOSE_RULE_PATH), 'Prometheus of the compose "monitoring" profile: docker compose -f compose/compose.yaml --profile monitoring up -d'));
  files.set(
    COMPOSE_FILE,
    renderDocument(renderCompose(model), 'Local stack (docker-compose 1.29 or docker compose): docker compose -f compose/compose.yaml up -d --build'),
  );
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Writes the files under `root`, replacing stale manifests in the profile directories. */
export function writeAll(root: string, files: Map<string, string>): void {
  for (const profile of MANIFEST_DIRS) {
    const dir = join(root, 'k8s', profile);
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) if (name.endsWith('.k8s.yaml')) rmSync(join(dir, name));
  }
  for (const [path, content] of files) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

function main(): void {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const root = resolve(values.out ?? REPO_ROOT);
  const files = renderAll(createModel({ image: process.env.EASEEMAIL_IMAGE || undefined }));
  writeAll(root, files);
  for (const path of files.keys()) console.log(`wrote ${join(root, path)}`);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
