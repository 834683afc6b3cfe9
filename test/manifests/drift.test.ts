/**
 * Drift: running `npm run synth` (charts/synth.ts) again must reproduce the committed files byte
 * for byte, and must write nothing else.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { REPO_ROOT, run } from './support/manifests';

const TSX = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');

function filesUnder(root: string, dir: string): string[] {
  const abs = join(root, dir);
  return readdirSync(abs).flatMap((name) => {
    const path = join(abs, name);
    return statSync(path).isDirectory() ? filesUnder(root, relative(root, path)) : [relative(root, path)];
  });
}

/** The generated files in a tree: every manifest under k8s/, and the compose file. */
function generated(root: string): string[] {
  return [...filesUnder(root, 'k8s').filter((f) => f.endsWith('.yaml')), 'compose/compose.yaml'].sort();
}

describe('drift', () => {
  let out: string;

  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'easeemail-synth-'));
    // The committed output uses the default image: no override may leak in from the caller.
    const env = { ...process.env };
    delete env.EASEEMAIL_IMAGE;
    run(TSX, [join(REPO_ROOT, 'charts', 'synth.ts'), '--out', out], { env });
  });

  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('writes exactly the committed set of files', () => {
    expect(generated(out)).toEqual(generated(REPO_ROOT));
    expect(generated(out)).toEqual(['compose/compose.yaml', 'k8s/dev/dev-dependencies.k8s.yaml', 'k8s/dev/easeemail.k8s.yaml', 'k8s/prod/easeemail.k8s.yaml']);
  });

  it('reproduces every committed file byte for byte (run `npm run synth` and commit if this fails)', () => {
    for (const file of generated(REPO_ROOT)) {
      const fresh = readFileSync(join(out, file));
      const committed = readFileSync(join(REPO_ROOT, file));
      expect({ file, same: fresh.equals(committed) }).toEqual({ file, same: true });
    }
  });

  it('marks every generated file as generated, and by what', () => {
    for (const file of generated(REPO_ROOT)) {
      expect(readFileSync(join(REPO_ROOT, file), 'utf8')).toMatch(/^# GENERATED FILE: do not edit\. Written by `npm run synth` \(charts\/synth\.ts\)/);
    }
  });
});
