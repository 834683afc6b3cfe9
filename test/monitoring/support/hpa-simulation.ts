/**
 * The HorizontalPodAutoscaler's replica calculation (kube-controller-manager's podautoscaler, v1.27)
 * for one External metric with an AverageValue target, applied to a measured series:
 *
 * - every sync period (15 s) the raw recommendation is ceil(value ÷ target) (for AverageValue:
 *   ceil(current × value ÷ (target × current))), kept at `current` while the usage ratio
 *   value ÷ (target × current) is within the tolerance (0.1) of 1;
 * - stabilisation: scaling down follows the highest recommendation of the last scaleDown window,
 *   scaling up the lowest of the last scaleUp window (0 s: the latest);
 * - rate limits: each policy allows, from the replica count at the start of its period, +value
 *   pods or +value % (up) or −value pods / −value % (down); selectPolicy Max takes the policy
 *   that allows the biggest change;
 * - then min/max replicas.
 */
import type { ScalingBehaviorSpec, ScalingRulesSpec } from '../../../charts/monitoring/scaling';

export const SYNC_PERIOD_SECONDS = 15;
export const TOLERANCE = 0.1;

export interface HpaSettings {
  minReplicas: number;
  maxReplicas: number;
  /** AverageValue target of the External metric. */
  target: number;
  behavior: ScalingBehaviorSpec;
}

export interface SimulationStep {
  /** Seconds since the start of the series. */
  t: number;
  value: number;
  /** ceil(value ÷ target) before tolerance, stabilisation and limits. */
  raw: number;
  replicas: number;
}

interface ScaleEvent {
  t: number;
  change: number;
}

/** The metric's value at time t: the latest sample at or before t (0 before the first). */
function valueAt(series: readonly [number, number][], t: number): number {
  let v = 0;
  for (const [ts, value] of series) {
    if (ts > t) break;
    v = value;
  }
  return v;
}

function limit(rules: ScalingRulesSpec, current: number, events: ScaleEvent[], t: number, up: boolean): number {
  const limits = rules.policies.map((p) => {
    const changed = events.filter((e) => e.t > t - p.periodSeconds && (up ? e.change > 0 : e.change < 0)).reduce((n, e) => n + e.change, 0);
    const start = current - changed;
    if (up) return p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    return p.type === 'Pods' ? start - p.value : Math.ceil(start * (1 - p.value / 100));
  });
  // Max: the policy allowing the biggest change; Min: the smallest.
  const pickMost = rules.selectPolicy === 'Max';
  return up ? (pickMost ? Math.max(...limits) : Math.min(...limits)) : pickMost ? Math.min(...limits) : Math.max(...limits);
}

/**
 * Runs the HPA over `series` ([seconds, value] pairs, ascending) from `startReplicas`, one sync
 * every SYNC_PERIOD_SECONDS until `untilSeconds` (the last value holds after the series ends).
 */
export function simulateHpa(series: readonly [number, number][], settings: HpaSettings, startReplicas: number, untilSeconds: number): SimulationStep[] {
  const steps: SimulationStep[] = [];
  const recommendations: { t: number; replicas: number }[] = [];
  const events: ScaleEvent[] = [];
  let current = startReplicas;
  for (let t = 0; t <= untilSeconds; t += SYNC_PERIOD_SECONDS) {
    const value = valueAt(series, t);
    const raw = Math.ceil(value / settings.target);
    const ratio = value / (settings.target * current);
    const desired = Math.abs(ratio - 1) <= TOLERANCE ? current : Math.max(raw, 0);
    recommendations.push({ t, replicas: desired });
    const { scaleUp, scaleDown } = settings.behavior;
    const upWindow = recommendations.filter((r) => r.t > t - scaleUp.stabilizationWindowSeconds || r.t === t).map((r) => r.replicas);
    const downWindow = recommendations.filter((r) => r.t > t - scaleDown.stabilizationWindowSeconds || r.t === t).map((r) => r.replicas);
    // As normalizeDesiredReplicasWithBehaviors: up to the lowest recommendation of the scale-up
    // window, down to the highest of the scale-down window.
    let next = current;
    const upRecommendation = Math.min(...upWindow);
    const downRecommendation = Math.max(...downWindow);
    if (next < upRecommendation) next = upRecommendation;
    if (next > downRecommendation) next = downRecommendation;
    if (next > current) next = Math.min(next, limit(scaleUp, current, events, t, true));
    if (next < current) next = Math.max(next, limit(scaleDown, current, events, t, false));
    next = Math.min(Math.max(next, settings.minReplicas), settings.maxReplicas);
    if (next !== current) events.push({ t, change: next - current });
    current = next;
    steps.push({ t, value, raw, replicas: current });
  }
  return steps;
}

/** The steps as a Markdown table (the README shows one from a real run). */
export function replicaTable(steps: readonly SimulationStep[]): string {
  const rows = steps.map((s) => `| ${s.t} | ${Math.round(s.value)} | ${s.raw} | ${s.replicas} |`);
  return ['| t (s) | ready items (query) | ceil(value ÷ target) | replicas |', '|---:|---:|---:|---:|', ...rows].join('\n');
}
