/**
 * Monitoring objects for clusters with the Prometheus operator (k8s/monitoring/): a PodMonitor per
 * role that serves metrics, the PrometheusRule, the Grafana dashboard as a ConfigMap, and the
 * NetworkPolicies that let Prometheus' namespace reach the metrics ports (the app's default-deny
 * policies admit nobody to the worker's port otherwise). Plus the plain files: the same rules for
 * a Prometheus without the operator, the dashboard JSON, the prometheus-adapter rules, and the
 * compose profile's Prometheus configuration.
 *
 * PodMonitors rather than ServiceMonitors: the worker has no Service, and one kind for every role
 * keeps the policy simple ("every role with a metrics port has a PodMonitor").
 */
import { ApiObject, App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { commonLabels } from '../main';
import type { DeploymentModel, ServerRole } from '../model';
import { objectName, SERVER_ROLES, validateModel } from '../model';
import { COMPONENT_LABEL, NAME_LABEL, selectorLabels } from '../constructs/pod';
import type { KubernetesObject } from '../render';
import { grafanaDashboard } from './dashboard';
import { ruleGroups } from './rules';
import { adapterExternalRules, APP_SERIES_LABEL } from './scaling';

/** Roles whose spec declares a metrics endpoint. */
export function metricsRoles(model: DeploymentModel): ServerRole[] {
  return SERVER_ROLES.filter((role) => model.workloads[role].metrics !== undefined);
}

export const DASHBOARD_FILE = 'easeemail-dashboard.json';

export class MonitoringChart extends Chart {
  constructor(scope: Construct, id: string, props: { readonly model: DeploymentModel }) {
    const { model } = props;
    super(scope, id, { disableResourceNameHashes: true, labels: commonLabels(model) });
    validateModel(model);
    const m = model.monitoring;
    for (const role of metricsRoles(model)) {
      const w = model.workloads[role];
      const metrics = w.metrics!;
      new ApiObject(this, `${role}-monitor`, {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PodMonitor',
        metadata: { name: objectName(model, role), labels: { ...m.monitorLabels } },
        spec: {
          selector: { matchLabels: selectorLabels(model.name, role) },
          // Become app_kubernetes_io_name / _component on every series: the backlog queries select on them.
          podTargetLabels: [NAME_LABEL, COMPONENT_LABEL],
          podMetricsEndpoints: [{ port: metrics.port, path: metrics.path, interval: `${m.scrapeIntervalSeconds}s` }],
        },
      });
      const port = w.ports.find((p) => p.name === metrics.port)!.containerPort;
      new ApiObject(this, `${role}-scrape-policy`, {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: objectName(model, `${role}-allow-prometheus`) },
        spec: {
          podSelector: { matchLabels: selectorLabels(model.name, role) },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': m.prometheusNamespace } } }],
              ports: [{ protocol: 'TCP', port }],
            },
          ],
        },
      });
    }
    new ApiObject(this, 'rules', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: model.name, labels: { ...m.monitorLabels } },
      spec: { groups: ruleGroups(m.rules) },
    });
    new ApiObject(this, 'dashboard', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: objectName(model, 'grafana-dashboard'), labels: { grafana_dashboard: '1' } },
      data: { [DASHBOARD_FILE]: dashboardJson(model) },
    });
  }
}

export function monitoringManifests(model: DeploymentModel): KubernetesObject[] {
  return new MonitoringChart(new App(), `${model.name}-monitoring`, { model }).toJson() as KubernetesObject[];
}

export function dashboardJson(model: DeploymentModel): string {
  return `${JSON.stringify(grafanaDashboard(model.name), null, 2)}\n`;
}

/** The plain Prometheus rule file (`rule_files:`), the same groups as the PrometheusRule. */
export function ruleFile(model: DeploymentModel) {
  return { groups: ruleGroups(model.monitoring.rules) };
}

/** What to merge into prometheus-adapter's configuration (`externalRules:`; Helm: `rules.external`). */
export function adapterConfig(model: DeploymentModel) {
  const backlog = model.workloads.worker.autoscaling.backlog;
  return { externalRules: backlog ? adapterExternalRules(backlog) : [] };
}

/**
 * The compose profile's Prometheus configuration: every api and worker replica (DNS service
 * discovery finds `--scale`d ones), labelled as the PodMonitors label them, with the same rules.
 */
export function composePrometheusConfig(model: DeploymentModel, ruleFilePath: string) {
  const interval = `${model.monitoring.scrapeIntervalSeconds}s`;
  return {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [ruleFilePath],
    scrape_configs: metricsRoles(model).map((role) => {
      const w = model.workloads[role];
      const port = w.ports.find((p) => p.name === w.metrics!.port)!.containerPort;
      return {
        job_name: role,
        metrics_path: w.metrics!.path,
        dns_sd_configs: [{ names: [role], type: 'A', port, refresh_interval: interval }],
        relabel_configs: [
          { target_label: APP_SERIES_LABEL, replacement: model.name },
          { target_label: 'app_kubernetes_io_component', replacement: role },
        ],
      };
    }),
  };
}
