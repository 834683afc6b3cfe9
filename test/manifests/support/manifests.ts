/** Loads the committed deployment files and offers small accessors the manifest suites share. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { ComposeFile, ComposeService } from '../../../compose/generate';
import type { ProfileName } from '../../../charts/model';

export const REPO_ROOT = join(__dirname, '..', '..', '..');
export const COMPOSE_PATH = join(REPO_ROOT, 'compose', 'compose.yaml');

/** A parsed Kubernetes object; the suites narrow it field by field. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any };
export type Container = { name: string; image: string; args?: string[]; env?: any[]; [key: string]: any };

/** A profile's directory, or another directory of objects to apply (`prod-keda`, `monitoring`). */
export function manifestFiles(profile: ProfileName | 'prod-keda' | 'monitoring'): string[] {
  const dir = join(REPO_ROOT, 'k8s', profile);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.k8s.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

export function parseManifest(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length) throw doc.errors[0];
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** Every object of a profile, as committed. */
export function loadProfile(profile: ProfileName | 'prod-keda' | 'monitoring'): K8sObject[] {
  return manifestFiles(profile).flatMap((f) => parseManifest(readFileSync(f, 'utf8')));
}

export function loadCompose(): ComposeFile {
  return parse(readFileSync(COMPOSE_PATH, 'utf8')) as ComposeFile;
}

export function composeService(compose: ComposeFile, name: string): ComposeService {
  const service = compose.services[name];
  if (!service) throw new Error(`compose.yaml has no service "${name}"`);
  return service;
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
}

export const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

/** Objects that carry a pod template (Deployments and Jobs). */
export const workloads = (objects: K8sObject[]) => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Job');

export function podSpec(o: K8sObject) {
  return o.spec.template.spec;
}

export function containersOf(o: K8sObject): { init: Container[]; main: Container[] } {
  const spec = podSpec(o);
  return { init: spec.initContainers ?? [], main: spec.containers };
}

/** The container of an app workload that runs the role (named after it). */
export function roleContainer(o: K8sObject, role: string): Container {
  const c = containersOf(o).main.find((x) => x.name === role);
  if (!c) throw new Error(`${o.kind} ${o.metadata.name} has no container "${role}"`);
  return c;
}

/** Kubernetes quantity → bytes (memory) or millicores (cpu). */
export function quantity(value: string | number, unit: 'bytes' | 'millicores'): number {
  const text = String(value);
  if (unit === 'millicores') return text.endsWith('m') ? Number(text.slice(0, -1)) : Number(text) * 1000;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(text);
  if (!m) throw new Error(`not a memory quantity: ${text}`);
  const factor: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * factor[m[2] ?? ''];
}

/** Docker/compose byte value ("512M", "1g"): binary multiples, as docker parses them. */
export function composeBytes(value: string | number): number {
  const m = /^(\d+)([bkmg])?b?$/i.exec(String(value));
  if (!m) throw new Error(`not a compose byte value: ${value}`);
  const factor: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };
  return Number(m[1]) * factor[(m[2] ?? '').toLowerCase()];
}

/** Env var names of a container, sorted. */
export function envNames(c: Container): string[] {
  return (c.env ?? []).map((e: { name: string }) => e.name).sort();
}

/** Runs a process synchronously with a clean environment; returns stdout or throws with stderr. */
export function run(file: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  return execFileSync(file, args, {
    cwd: options.cwd ?? REPO_ROOT,
    input: options.input,
    env: options.env ?? process.env,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
}
