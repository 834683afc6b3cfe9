/**
 * The cdk8s app: one chart with EaseEmail itself per profile, plus, in the dev profile, a chart
 * with the in-cluster stand-ins for PostgreSQL, Redis and SMTP. `charts/synth.ts` writes them.
 */
import { createHash } from 'node:crypto';
import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { DevDependency } from './constructs/dev-dependency';
import { MigrationJob } from './constructs/migration-job';
import { NetworkPolicies } from './constructs/network-policies';
import { NAME_LABEL } from './constructs/pod';
import { ServerWorkload } from './constructs/server-workload';
import type { DeploymentModel, DevDependencyName, Peer, ProfileName } from './model';
import {
  DEV_DEPENDENCIES,
  devSecretValues,
  migrationJobName,
  objectName,
  portNumber,
  resolveAutoscaling,
  resolveConfig,
  resolveEnv,
  ROLES,
  SERVER_ROLES,
  validateModel,
} from './model';
import type { KubernetesObject } from './render';

/** Labels on every object; selectors use only the stable subset (see `selectorLabels`). */
export function commonLabels(model: DeploymentModel): Record<string, string> {
  return {
    [NAME_LABEL]: model.name,
    'app.kubernetes.io/part-of': model.name,
    'app.kubernetes.io/version': model.image.version,
    'app.kubernetes.io/managed-by': 'cdk8s',
  };
}

export interface EaseEmailChartProps {
  readonly model: DeploymentModel;
  readonly profile: ProfileName;
}

/**
 * EaseEmail for one profile: ServiceAccount, ConfigMap, the api and worker workloads, the
 * per-release migration Job and the NetworkPolicies. The Secret is only referenced here; prod
 * expects the operator to create it, dev gets one from `DevDependenciesChart`.
 */
export class EaseEmailChart extends Chart {
  constructor(scope: Construct, id: string, props: EaseEmailChartProps) {
    const { model, profile } = props;
    super(scope, id, { disableResourceNameHashes: true, labels: commonLabels(model) });
    validateModel(model);
    const profileSpec = model.profiles[profile];
    const config = resolveConfig(model, profile);
    const sortedConfig = Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)));

    const configMap = new kplus.ConfigMap(this, 'Config', { metadata: { name: model.configMapName }, data: sortedConfig });
    const secret = kplus.Secret.fromSecretName(this, 'Secret', model.secretName);
    const serviceAccount = new kplus.ServiceAccount(this, 'ServiceAccount', { metadata: { name: model.name }, automountToken: false });
    const runAs = { user: model.appUser };
    // A changed setting changes the pod template, so `kubectl apply` rolls the pods.
    const configChecksum = createHash('sha256').update(JSON.stringify(sortedConfig)).digest('hex');
    const migrate = model.workloads.migrate;
    const migrateEnv = resolveEnv(model, profile, 'migrate');

    for (const role of SERVER_ROLES) {
      new ServerWorkload(this, role, {
        spec: model.workloads[role],
        appName: model.name,
        image: model.image.ref,
        env: resolveEnv(model, profile, role),
        envSources: { secret, configMap, config },
        serviceAccount,
        runAs,
        migrationWait: { args: migrate.waitArgs, env: migrateEnv, resources: migrate.resources },
        autoscaling: resolveAutoscaling(model, profile, role),
        autoscalingPath: profileSpec.autoscaling[role] ? `profiles.${profile}.autoscaling.${role}` : undefined,
        podAnnotations: { 'checksum/config': configChecksum },
        pollingIntervalSeconds: model.monitoring.scrapeIntervalSeconds,
      });
    }

    new MigrationJob(this, 'migrate', {
      spec: migrate,
      name: migrationJobName(model),
      appName: model.name,
      image: model.image.ref,
      env: migrateEnv,
      envSources: { secret, config },
      runAs,
    });

    const inCluster = (dependency: DevDependencyName) => {
      const dep = model.devDependencies[dependency];
      return { component: dep.name, port: portNumber(dep.ports, dep.clientPort)! };
    };
    new NetworkPolicies(this, 'NetworkPolicies', {
      appName: model.name,
      network: model.network,
      workloads: ROLES.map((role) => {
        const w = model.workloads[role];
        return {
          component: role,
          peers: w.peers,
          publicIngressPorts: 'service' in w && w.service ? [portNumber(w.ports, w.service.targetPort)!] : undefined,
        };
      }),
      inCluster: profileSpec.devDependencies ? { postgres: inCluster('db'), redis: inCluster('redis') } : undefined,
      allowPrivateWebhookTargets: config.WEBHOOK_ALLOW_PRIVATE_NETWORKS === 'true',
    });
  }
}

export interface DevDependenciesChartProps {
  readonly model: DeploymentModel;
}

/**
 * The dev profile's stand-ins (PostgreSQL, Redis, the mail catcher) and the Secrets that point
 * the app at them, with obviously-dev values.
 */
export class DevDependenciesChart extends Chart {
  constructor(scope: Construct, id: string, props: DevDependenciesChartProps) {
    const { model } = props;
    super(scope, id, { disableResourceNameHashes: true, labels: commonLabels(model) });
    validateModel(model);
    const devOnly = { 'kubernetes.io/description': 'Development values only. Prod references a Secret the operator creates.' };

    new kplus.Secret(this, 'AppSecret', {
      metadata: { name: model.secretName, annotations: devOnly },
      stringData: { ...devSecretValues(model, (dep) => objectName(model, dep)) },
    });

    for (const name of DEV_DEPENDENCIES) {
      const spec = model.devDependencies[name];
      const secret =
        Object.keys(spec.secretEnv).length > 0
          ? new kplus.Secret(this, `${name}-secret`, { metadata: { name: objectName(model, name), annotations: devOnly }, stringData: { ...spec.secretEnv } })
          : undefined;
      const provides: Peer = spec.provides;
      new DevDependency(this, name, {
        spec,
        appName: model.name,
        secret,
        clients: ROLES.filter((role) => model.workloads[role].peers.includes(provides)),
      });
    }
  }
}

/** File name → objects of each chart of a profile, in the order cdk8s produced them. */
export function kubernetesManifests(model: DeploymentModel, profile: ProfileName): Record<string, KubernetesObject[]> {
  const app = new App();
  const charts: Chart[] = [new EaseEmailChart(app, model.name, { model, profile })];
  if (model.profiles[profile].devDependencies) charts.push(new DevDependenciesChart(app, 'dev-dependencies', { model }));
  return Object.fromEntries(charts.map((chart) => [`${chart.node.id}.k8s.yaml`, chart.toJson() as KubernetesObject[]]));
}
