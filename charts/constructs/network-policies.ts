import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import type { NetworkSpec, Peer } from '../model';
import { COMPONENT_LABEL, NAME_LABEL, selectorLabels } from './pod';

type k8sPeer = kplus.k8s.NetworkPolicyPeer;
type k8sPort = kplus.k8s.NetworkPolicyPort;
type EgressRule = kplus.k8s.NetworkPolicyEgressRule;
type IngressRule = kplus.k8s.NetworkPolicyIngressRule;

/** A workload's side of the network: what it talks to and which ports anyone may reach. */
export interface WorkloadNetworkProps {
  /** `app.kubernetes.io/component` of the workload's pods. */
  readonly component: string;
  readonly peers: readonly Peer[];
  /**
   * Ports open to ingress from any source (the API behind an ingress controller or load balancer).
   *
   * @default - no ingress
   */
  readonly publicIngressPorts?: readonly number[];
}

/** A data store running in the cluster, next to the app (the dev profile). */
export interface InClusterStore {
  /** `app.kubernetes.io/component` of the store's pods. */
  readonly component: string;
  readonly port: number;
}

export interface NetworkPoliciesProps {
  /** `app.kubernetes.io/name` shared by all the app's pods; default deny and DNS apply to them. */
  readonly appName: string;
  readonly network: NetworkSpec;
  readonly workloads: readonly WorkloadNetworkProps[];
  /**
   * PostgreSQL and Redis inside the namespace. Unset, they are external services: egress is allowed
   * to any address on their ports.
   *
   * @default - external
   */
  readonly inCluster?: { readonly postgres: InClusterStore; readonly redis: InClusterStore };
  /**
   * Mirrors WEBHOOK_ALLOW_PRIVATE_NETWORKS. When false, webhook egress is HTTP(S) to public
   * addresses only; when true (local receivers on private networks, any port), it is unrestricted.
   *
   * @default false
   */
  readonly allowPrivateWebhookTargets?: boolean;
}

const tcp = (port: number): k8sPort => ({ port: kplus.k8s.IntOrString.fromNumber(port), protocol: 'TCP' });
const udp = (port: number): k8sPort => ({ port: kplus.k8s.IntOrString.fromNumber(port), protocol: 'UDP' });

/** Any address: outside the cluster (both families) and any pod in any namespace. */
function anywhere(): k8sPeer[] {
  return [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }, { namespaceSelector: {} }];
}

/**
 * The app's NetworkPolicies: default deny in both directions for every pod of the app, DNS for
 * all of them, and per workload exactly the flows its `peers` name.
 *
 * Written with the L1 `KubeNetworkPolicy`: cdk8s-plus-27's NetworkPolicy needs a peer for every
 * rule and makes one rule per peer, so "any source on the API port" and one webhook rule covering
 * IPv4 and IPv6 cannot be expressed with it.
 */
export class NetworkPolicies extends Construct {
  public readonly policies: kplus.k8s.KubeNetworkPolicy[] = [];

  constructor(scope: Construct, id: string, private readonly props: NetworkPoliciesProps) {
    super(scope, id);
    const { appName, network } = props;
    const appPods = { matchLabels: { [NAME_LABEL]: appName } };

    this.add('default-deny', { podSelector: appPods, policyTypes: ['Ingress', 'Egress'] });
    this.add('allow-dns', {
      podSelector: appPods,
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': network.dns.namespace } },
              podSelector: { matchLabels: { ...network.dns.podLabels } },
            },
          ],
          ports: [udp(53), tcp(53)],
        },
      ],
    });

    for (const w of props.workloads) {
      const ingress: IngressRule[] = w.publicIngressPorts?.length ? [{ ports: w.publicIngressPorts.map(tcp) }] : [];
      const egress = w.peers.map((peer) => this.egressRule(peer));
      this.add(w.component, {
        podSelector: { matchLabels: selectorLabels(appName, w.component) },
        policyTypes: [...(ingress.length ? ['Ingress'] : []), ...(egress.length ? ['Egress'] : [])],
        ingress: ingress.length ? ingress : undefined,
        egress: egress.length ? egress : undefined,
      });
    }
  }

  private egressRule(peer: Peer): EgressRule {
    const { network, inCluster, appName } = this.props;
    const store = (s: InClusterStore): EgressRule => ({
      to: [{ podSelector: { matchLabels: { [NAME_LABEL]: appName, [COMPONENT_LABEL]: s.component } } }],
      ports: [tcp(s.port)],
    });
    switch (peer) {
      case 'postgres':
        return inCluster ? store(inCluster.postgres) : { to: anywhere(), ports: [tcp(network.postgresPort)] };
      case 'redis':
        return inCluster ? store(inCluster.redis) : { to: anywhere(), ports: [tcp(network.redisPort)] };
      case 'smtp':
        // Relays are often internal, so private addresses stay reachable on the SMTP ports.
        return { to: anywhere(), ports: network.smtpPorts.map(tcp) };
      case 'webhooks':
        if (this.props.allowPrivateWebhookTargets) return {};
        return {
          to: [
            { ipBlock: { cidr: '0.0.0.0/0', except: [...network.privateRanges.ipv4] } },
            { ipBlock: { cidr: '::/0', except: [...network.privateRanges.ipv6] } },
          ],
          ports: network.webhookPorts.map(tcp),
        };
    }
  }

  private add(suffix: string, spec: kplus.k8s.NetworkPolicySpec): void {
    this.policies.push(new kplus.k8s.KubeNetworkPolicy(this, suffix, { metadata: { name: `${this.props.appName}-${suffix}` }, spec }));
  }
}

export interface StoreIngressProps {
  readonly appName: string;
  readonly component: string;
  readonly clientPort: number;
  /** Components allowed on `clientPort`. */
  readonly clients: readonly string[];
  /**
   * A port open to any source (a web UI).
   *
   * @default - none
   */
  readonly uiPort?: number;
}

/** Ingress for a store that runs next to the app: its clients on the client port, anyone on the UI port. */
export class StoreIngressPolicy extends Construct {
  public readonly policy: kplus.k8s.KubeNetworkPolicy;

  constructor(scope: Construct, id: string, props: StoreIngressProps) {
    super(scope, id);
    const ingress: IngressRule[] = [];
    if (props.clients.length > 0) {
      ingress.push({
        from: [
          {
            podSelector: {
              matchLabels: { [NAME_LABEL]: props.appName },
              matchExpressions: [{ key: COMPONENT_LABEL, operator: 'In', values: [...props.clients].sort() }],
            },
          },
        ],
        ports: [tcp(props.clientPort)],
      });
    }
    if (props.uiPort !== undefined) ingress.push({ ports: [tcp(props.uiPort)] });
    this.policy = new kplus.k8s.KubeNetworkPolicy(this, 'Resource', {
      metadata: { name: `${props.appName}-${props.component}` },
      spec: {
        podSelector: { matchLabels: selectorLabels(props.appName, props.component) },
        policyTypes: ['Ingress'],
        ingress,
      },
    });
  }
}
