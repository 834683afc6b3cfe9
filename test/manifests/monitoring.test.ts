/**
 * Policy for the monitoring and scaling outputs, read from the committed files: every role that
 * serves metrics has a PodMonitor (and a policy that lets Prometheus reach it), every alert has a
 * runbook in the README, both scaling renderings agree with the model and with each other, and
 * the plain copies (rule file, dashboard JSON, compose Prometheus) match what the operator gets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createModel, SERVER_ROLES } from '../../charts/model';
import { alertNames } from '../../charts/monitoring/rules';
import { kedaQuery } from '../../charts/monitoring/scaling';
import { composeService, find, loadCompose, ofKind, parseManifest, REPO_ROOT, type K8sObject } from './support/manifests';

const model = createModel();
const worker = model.workloads.worker;
const load = (dir: string) => parseManifest(readFileSync(join(REPO_ROOT, 'k8s', dir, 'easeemail.k8s.yaml'), 'utf8'));
const monitoring = parseManifest(readFileSync(join(REPO_ROOT, 'k8s', 'monitoring', 'easeemail-monitoring.k8s.yaml'), 'utf8'));
const readYaml = (path: string) => parse(readFileSync(join(REPO_ROOT, path), 'utf8'));
const metricsRoles = SERVER_ROLES.filter((role) => model.workloads[role].metrics);

describe('monitors', () => {
  it('the model declares metrics for every long-running role', () => {
    expect(metricsRoles).toEqual([...SERVER_ROLES]);
  });

  it.each(metricsRoles)('%s: a PodMonitor selects its pods on its metrics port and path', (role) => {
    const w = model.workloads[role];
    const monitor = find(monitoring, 'PodMonitor', `easeemail-${role}`);
    const deployment = find(load('prod'), 'Deployment', `easeemail-${role}`);
    const podLabels = deployment.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) expect({ k, v: podLabels[k] }).toEqual({ k, v });
    const ports = deployment.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name);
    expect(ports).toContain(monitor.spec.podMetricsEndpoints[0].port);
    expect(monitor.spec.podMetricsEndpoints).toEqual([{ port: w.metrics!.port, path: '/metrics', interval: `${model.monitoring.scrapeIntervalSeconds}s` }]);
    expect(monitor.spec.podTargetLabels).toEqual(['app.kubernetes.io/name', 'app.kubernetes.io/component']);
    expect(monitor.metadata.labels).toMatchObject(model.monitoring.monitorLabels);
  });

  it.each(metricsRoles)('%s: Prometheus\' namespace may reach the metrics port through the default-deny policies', (role) => {
    const policy = find(monitoring, 'NetworkPolicy', `easeemail-${role}-allow-prometheus`);
    const port = model.workloads[role].ports.find((p) => p.name === model.workloads[role].metrics!.port)!.containerPort;
    expect(policy.spec.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port }] }]);
  });
});

describe('rules and dashboard', () => {
  const rule = find(monitoring, 'PrometheusRule', 'easeemail');

  it('the PrometheusRule and the plain rule file carry the same groups, every alert with summary, description and runbook', () => {
    expect(readYaml('k8s/addons/prometheus/easeemail.rules.yaml')).toEqual({ groups: rule.spec.groups });
    const alerts = rule.spec.groups.flatMap((g: { rules: { alert?: string; annotations?: Record<string, string> }[] }) => g.rules.filter((r) => r.alert));
    expect(alerts.length).toBe(model.monitoring.rules.alerts.length);
    for (const a of alerts) expect(Object.keys(a.annotations).sort()).toEqual(['description', 'runbook', 'summary']);
  });

  it('every alert has a runbook section in the README, and the README has none for an alert that does not exist', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const runbooks = [...readme.matchAll(/^#### (EaseEmail\w+)$/gm)].map((m) => m[1]);
    expect(runbooks.sort()).toEqual(alertNames(model.monitoring.rules).sort());
    for (const name of runbooks) {
      const section = readme.slice(readme.indexOf(`#### ${name}\n`)).split(/\n#### /)[0];
      expect({ name, what: /What it means/.test(section), todo: /What to do/.test(section) }).toEqual({ name, what: true, todo: true });
    }
  });

  it('the dashboard ships as a file and as a ConfigMap Grafana\'s sidecar loads', () => {
    const configMap = find(monitoring, 'ConfigMap', 'easeemail-grafana-dashboard');
    expect(configMap.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    const file = readFileSync(join(REPO_ROOT, 'k8s', 'addons', 'grafana', 'easeemail-dashboard.json'), 'utf8');
    expect(configMap.data['easeemail-dashboard.json']).toBe(file);
    const titles = JSON.parse(file).panels.map((p: { title: string }) => p.title);
    for (const wanted of ['Accepted per second', 'Deliveries by outcome', 'Backlog per queue', 'Oldest ready job per queue', 'Accepted → delivered latency', 'Webhook outcomes per endpoint (top 10)', 'api errors', 'Memory (RSS and heap)', 'Event-loop lag (p99)']) {
      expect(titles).toContain(wanted);
    }
  });
});

describe('scaling', () => {
  const prod = load('prod');
  const keda = load('prod-keda');
  const hpa = find(prod, 'HorizontalPodAutoscaler', 'easeemail-worker');

  it('prod: the worker scales on CPU and on ready jobs per replica (External metric, AverageValue from the model)', () => {
    expect(hpa.spec.metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: worker.autoscaling.targetCpuUtilizationPercent } } },
      {
        type: 'External',
        external: {
          metric: { name: 'easeemail_ready_jobs', selector: { matchLabels: { app_kubernetes_io_name: 'easeemail' } } },
          target: { type: 'AverageValue', averageValue: String(worker.autoscaling.backlog!.readyJobsPerReplica) },
        },
      },
    ]);
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(worker.autoscaling.behavior.scaleDown.stabilizationWindowSeconds);
  });

  it('prod: the api keeps CPU only', () => {
    expect(find(prod, 'HorizontalPodAutoscaler', 'easeemail-api').spec.metrics.map((m: K8sObject) => m.type)).toEqual(['Resource']);
  });

  it('the prometheus-adapter rules serve the metric the HPA asks for, per namespace', () => {
    const rules = readYaml('k8s/addons/prometheus-adapter/external-rules.yaml').externalRules;
    expect(rules).toHaveLength(1);
    expect(rules[0].name.as).toBe(hpa.spec.metrics[1].external.metric.name);
    expect(rules[0].resources).toEqual({ overrides: { namespace: { resource: 'namespace' } } });
    expect(rules[0].metricsQuery).toContain('max by (namespace, queue)');
  });

  it('prod-keda: a ScaledObject with the same bounds, behaviour and targets, and no HPA of its own for the worker', () => {
    expect(ofKind(keda, 'HorizontalPodAutoscaler').map((o) => o.metadata.name)).toEqual(['easeemail-api', 'easeemail-inbound']);
    const so = find(keda, 'ScaledObject', 'easeemail-worker');
    expect(so.spec.scaleTargetRef).toEqual(hpa.spec.scaleTargetRef);
    expect([so.spec.minReplicaCount, so.spec.maxReplicaCount]).toEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas]);
    expect(so.spec.advanced.horizontalPodAutoscalerConfig.behavior).toEqual(hpa.spec.behavior);
    expect(so.spec.triggers).toEqual([
      { type: 'prometheus', metricType: 'AverageValue', metadata: { serverAddress: worker.autoscaling.backlog!.prometheusUrl, query: kedaQuery('easeemail'), threshold: '100' } },
      { type: 'cpu', metricType: 'Utilization', metadata: { value: '70' } },
    ]);
  });

  it('prod-keda differs from prod only in the worker\'s autoscaler', () => {
    const withoutAutoscalers = (objects: K8sObject[]) => objects.filter((o) => !['HorizontalPodAutoscaler', 'ScaledObject'].includes(o.kind) || o.metadata.name !== 'easeemail-worker');
    expect(withoutAutoscalers(keda)).toEqual(withoutAutoscalers(prod));
  });

  it('the Deployments carry no replica count (the autoscaler owns it)', () => {
    for (const objects of [prod, keda]) for (const d of ofKind(objects, 'Deployment')) expect(d.spec.replicas).toBeUndefined();
  });
});

describe('compose monitoring profile', () => {
  const compose = loadCompose();
  const prometheus = composeService(compose, 'prometheus');
  const config = readYaml('compose/prometheus.yaml');

  it('runs prom/prometheus:v2.42.0 only with --profile monitoring, UI on loopback', () => {
    expect(prometheus.image).toBe('prom/prometheus:v2.42.0');
    expect(prometheus.profiles).toEqual(['monitoring']);
    expect(prometheus.ports).toEqual(['127.0.0.1:${PROMETHEUS_PORT:-9090}:9090']);
    for (const name of Object.keys(compose.services).filter((s) => s !== 'prometheus')) expect(compose.services[name].profiles).toBeUndefined();
  });

  it('mounts the generated configuration and the same rule file the PrometheusRule carries', () => {
    const mounts = Object.fromEntries(prometheus.volumes!.map((v) => v.split(':')).map(([host, container]) => [container, host]));
    expect(mounts['/etc/prometheus/prometheus.yml']).toBe('./prometheus.yaml');
    expect(config.rule_files).toEqual(['/etc/prometheus/rules/easeemail.rules.yaml']);
    expect(mounts['/etc/prometheus/rules/easeemail.rules.yaml']).toBe('../k8s/addons/prometheus/easeemail.rules.yaml');
  });

  it('scrapes every replica of api, worker and inbound on their metrics ports, labelled as the PodMonitors label them', () => {
    expect(config.scrape_configs.map((s: { job_name: string; dns_sd_configs: { names: string[]; port: number }[] }) => [s.job_name, s.dns_sd_configs[0].names, s.dns_sd_configs[0].port])).toEqual([
      ['api', ['api'], 8000],
      ['worker', ['worker'], 8001],
      ['inbound', ['inbound'], 8002],
    ]);
    for (const s of config.scrape_configs) expect(s.relabel_configs).toContainEqual({ target_label: 'app_kubernetes_io_name', replacement: 'easeemail' });
    for (const role of ['api', 'worker', 'inbound']) expect(composeService(compose, role).networks).toContain(prometheus.networks[0]);
  });
});
