/** EaseEmail's monitoring settings (the deployment model's `monitoring`). */
import { JOB_KINDS, JOBS } from '../../app/queue';
import { buildRules, type MonitoringSpec, type MonitoringThresholds } from './rules';

/** The queues of the queue contract (app/queue/jobs.ts), by BullMQ name: a new kind joins here. */
export const CONTRACT_QUEUES: readonly string[] = [...new Set(JOB_KINDS.map((kind) => JOBS[kind].queue))];

const THRESHOLDS: MonitoringThresholds = {
  // Accepted → delivered is about a second when healthy (README, Performance): ten minutes of
  // waiting means the workers cannot keep up, for long enough not to page on a burst.
  backlogAge: Object.fromEntries(CONTRACT_QUEUES.map((q) => [q, { maxSeconds: 600, forSeconds: 600 }])),
  // Webhook receivers fail now and then (retries are normal); a fifth of attempts failing for
  // 15 minutes is a receiver or relay outage.
  deliveryFailureRatio: { max: 0.2, forSeconds: 900 },
  apiErrorRatio: { max: 0.05, forSeconds: 600 },
  // Longer than a rollout's pod replacement plus two 15 s scrapes.
  workerDownForSeconds: 300,
  // Four readiness periods (5 s × failureThreshold 2) over: not a blip, not a long outage.
  dependencyUnreadyForSeconds: 120,
  failedJobsGrowth: { minIncrease: 10, windowSeconds: 3600, forSeconds: 900 },
};

export function easeemailMonitoring(): MonitoringSpec {
  return {
    scrapeIntervalSeconds: 15,
    prometheusNamespace: 'monitoring',
    thresholds: THRESHOLDS,
    rules: buildRules(CONTRACT_QUEUES, THRESHOLDS),
  };
}
