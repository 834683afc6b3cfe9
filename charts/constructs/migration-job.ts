import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import type { MigrationSpec, ResolvedEnv } from '../model';
import { assertNoProblems, checkAppResources } from '../model';
import { appContainer, hardenPodTemplate, EnvSources, podSecurityContext, RunAs, selectorLabels, writableMounts } from './pod';

/**
 * Orders the Job before the rest of a release under Helm (pre-install/pre-upgrade hook) and
 * Argo CD (PreSync hook, earliest wave). A new hook run first deletes the previous Job.
 */
export const MIGRATION_HOOK_ANNOTATIONS: Readonly<Record<string, string>> = {
  'helm.sh/hook': 'pre-install,pre-upgrade',
  'helm.sh/hook-weight': '-10',
  'helm.sh/hook-delete-policy': 'before-hook-creation',
  'argocd.argoproj.io/hook': 'PreSync',
  'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation',
  'argocd.argoproj.io/sync-wave': '-10',
};

export interface MigrationJobProps {
  /** The migrate role as the deployment model describes it. */
  readonly spec: MigrationSpec;
  /**
   * Where `spec` sits in the model; quoted in error messages.
   *
   * @default 'workloads.migrate'
   */
  readonly specPath?: string;
  /** Job name. Name it per release: a Job's pod template is immutable, a new name is a new run. */
  readonly name: string;
  /** `app.kubernetes.io/name` of the Job and its pods. */
  readonly appName: string;
  readonly image: string;
  /** Environment keys the container receives. */
  readonly env: ResolvedEnv;
  /**
   * Where the values come from. Leave `configMap` unset: as a hook the Job runs before the
   * release's ConfigMap exists.
   */
  readonly envSources: EnvSources;
  readonly runAs: RunAs;
  /**
   * Adds the Helm and Argo CD hook annotations.
   *
   * @default true
   */
  readonly hookAnnotations?: boolean;
}

/**
 * The one-shot `migrate` run of a release. Plain `kubectl apply` creates it alongside the
 * Deployments, whose `migrate --wait` init containers hold new pods until it has finished; Helm
 * and Argo CD run it first through the hook annotations.
 *
 * The pod uses the namespace's default ServiceAccount with no token mounted: as a hook it starts
 * before the release's own ServiceAccount exists.
 */
export class MigrationJob extends Construct {
  public readonly job: kplus.Job;

  constructor(scope: Construct, id: string, props: MigrationJobProps) {
    super(scope, id);
    const specPath = props.specPath ?? 'workloads.migrate';
    const { spec } = props;
    const problems = checkAppResources(spec.resources, `${specPath}.resources`);
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(props.name)) {
      problems.push(`Job name ("${props.name}") must be a DNS label of at most 63 characters`);
    }
    if (props.envSources.configMap) problems.push(`${specPath}: the Job must not read a ConfigMap (it runs before the release's objects exist)`);
    assertNoProblems(problems);

    this.job = new kplus.Job(this, 'Job', {
      metadata: { name: props.name, annotations: props.hookAnnotations === false ? undefined : { ...MIGRATION_HOOK_ANNOTATIONS } },
      select: false,
      podMetadata: { labels: selectorLabels(props.appName, spec.role) },
      automountServiceAccountToken: false,
      securityContext: podSecurityContext(props.runAs),
      backoffLimit: spec.job.backoffLimit,
      activeDeadline: Duration.seconds(spec.job.activeDeadlineSeconds),
      ttlAfterFinished: Duration.seconds(spec.job.ttlSecondsAfterFinished),
    });
    hardenPodTemplate(this.job);
    this.job.addContainer(
      appContainer({
        name: spec.role,
        image: props.image,
        args: spec.args,
        env: props.env,
        envSources: props.envSources,
        resources: spec.resources,
        runAs: props.runAs,
        mounts: writableMounts(this.job, ['/tmp']),
      }),
    );
  }
}
