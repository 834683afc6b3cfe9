/**
 * `npm run synth`: the one script that writes every generated deployment file from the model:
 *
 *   k8s/dev/*.k8s.yaml     EaseEmail + in-cluster PostgreSQL, Redis and mail catcher, dev Secret
 *   k8s/prod/*.k8s.yaml    EaseEmail; references the Secret the operator creates
 *   compose/compose.yaml   the local stack
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
import type { DeploymentModel } from './model';
import { createModel, PROFILES } from './model';
import { renderDocument, renderManifest } from './render';

export const REPO_ROOT = resolve(__dirname, '..');
export const COMPOSE_FILE = 'compose/compose.yaml';

/** Relative path → file contents, for every generated file. */
export function renderAll(model: DeploymentModel): Map<string, string> {
  const files = new Map<string, string>();
  for (const profile of PROFILES) {
    for (const [file, objects] of Object.entries(kubernetesManifests(model, profile))) {
      files.set(`k8s/${profile}/${file}`, renderManifest(objects, `Kubernetes, profile "${profile}": kubectl apply -f k8s/${profile}`));
    }
  }
  files.set(
    COMPOSE_FILE,
    renderDocument(renderCompose(model), 'Local stack (docker-compose 1.29 or docker compose): docker compose -f compose/compose.yaml up -d --build'),
  );
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Writes the files under `root`, replacing stale manifests in the profile directories. */
export function writeAll(root: string, files: Map<string, string>): void {
  for (const profile of PROFILES) {
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
