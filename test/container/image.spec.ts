/**
 * The built image (global-setup builds it): who it runs as, what it carries and what it does
 * not, how it starts and how its health is checked, and how big it is.
 */
import packageLock from '../../package-lock.json';
import { BASE_IMAGE, IMAGE, podman, report, runToCompletion } from './support';

const MB = 1_000_000;
/** Issue 6: the image may add at most this much to the base image. */
const SIZE_BUDGET_BYTES = 150 * MB;

async function inspect(image: string, format: string): Promise<string> {
  return (await podman(['image', 'inspect', '--format', format, image])).stdout.trim();
}

/** Runs bash in the image (as `user`, default the image's own) and returns what it printed. */
async function sh(script: string, user?: string): Promise<{ exitCode: number; output: string }> {
  return runToCompletion([...(user ? ['--user', user] : []), IMAGE, 'bash', '-c', script]);
}

describe('the image', () => {
  test('runs as uid 1000 (user node), with files it cannot modify', async () => {
    expect(await inspect(IMAGE, '{{.Config.User}}')).toBe('1000:1000');
    const r = await sh('id -un; id -u; id -g; touch /app/dist/app/main.js 2>/dev/null && echo writable || echo read-only; stat -c %u /app/dist/app/main.js');
    expect(r.exitCode).toBe(0);
    expect(r.output.trim().split('\n')).toEqual(['node', '1000', '1000', 'read-only', '0']);
  });

  test('carries no build toolchain, no npm and no npm cache', async () => {
    // As root, so nothing is hidden by permissions; -xdev keeps find off /proc and /sys.
    const r = await sh(
      'for t in gcc cc c++ g++ make python python3 npm npx corepack yarn pnpm; do command -v "$t" && echo "found $t"; done; ' +
        'find / -xdev \\( -name .npm -o -name _cacache -o -name .node-gyp -o -path /usr/local/lib/node_modules/npm \\) -print; true',
      '0',
    );
    expect(r.exitCode).toBe(0);
    expect(r.output.trim()).toBe('');
  });

  test('carries exactly the production dependency tree of package-lock.json: no Prisma CLI, no devDependency', async () => {
    const lock = (packageLock as { packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }> }).packages;
    // Optional ones are omitted too: npm keeps the Prisma CLI as @prisma/client's optional peer otherwise.
    const production = Object.entries(lock)
      .filter(([key, p]) => key.startsWith('node_modules/') && !p.dev && !p.devOptional && !p.optional)
      .map(([key]) => key)
      .sort();
    const r = await sh(
      `cd /app && find node_modules -name package.json | sed -n 's#/package.json$##p' | grep -E '(^|/)node_modules/(@[^/]+/)?[^/@]+$' | sort; ` +
        'echo "du $(du -sm /app/node_modules | cut -f1) MB"',
    );
    expect(r.exitCode).toBe(0);
    const installed = r.output.split('\n').filter((l) => l.startsWith('node_modules/'));
    expect(installed.filter((p) => !production.includes(p))).toEqual([]);
    expect(production.filter((p) => !installed.includes(p))).toEqual([]);
    for (const tool of ['node_modules/prisma', 'node_modules/typescript', 'node_modules/jest', 'node_modules/tsx']) expect(installed).not.toContain(tool);
    expect(installed).toContain('node_modules/@prisma/client');
    report(`runtime node_modules: ${r.output.match(/^du (\d+) MB$/m)?.[1]} MB, ${installed.length} packages`);
  });

  test('starts through tini and the entrypoint, api by default, and has `easeemail` on PATH', async () => {
    expect(JSON.parse(await inspect(IMAGE, '{{json .Config.Entrypoint}}'))).toEqual(['tini', '--', 'docker-entrypoint.sh']);
    expect(JSON.parse(await inspect(IMAGE, '{{json .Config.Cmd}}'))).toEqual(['api']);
    expect(JSON.parse(await inspect(IMAGE, '{{json .Config.Env}}'))).toContain('NODE_ENV=production');
    // tini is PID 1 and keeps the entrypoint's arguments, which the healthcheck reads.
    const r = await sh('tr "\\0" " " </proc/1/cmdline; echo; command -v easeemail');
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/^tini -- docker-entrypoint\.sh bash -c /m);
    expect(r.output).toMatch(/^\/usr\/local\/bin\/easeemail$/m);
    // An easeemail subcommand passes through the entrypoint.
    const help = await runToCompletion([IMAGE, '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.output).toMatch(/Usage: easeemail <command>/);
  });

  test('has an exec-form HEALTHCHECK through the app, without curl and without spaces in its arguments', async () => {
    // `docker image inspect` through podman's API omits the healthcheck; podman shows it.
    const hc = JSON.parse(await inspect(IMAGE, '{{json .HealthCheck}}'));
    expect(hc.Test).toEqual(['CMD', 'docker-entrypoint.sh', 'healthcheck']);
    for (const arg of hc.Test) expect(arg).not.toMatch(/\s/);
    expect(hc.Interval).toBeGreaterThan(0);
    expect(hc.Timeout).toBeGreaterThan(0);
    expect(hc.StartPeriod).toBeGreaterThan(0);
    const curl = await sh('command -v curl wget || echo none');
    expect(curl.output.trim()).toBe('none');
    // Outside an api or worker container there is nothing to probe: healthy, and it says why.
    const r = await runToCompletion([IMAGE, 'healthcheck']);
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/no api, worker or inbound process in this container/);
  });

  test(`is at most the base image + ${SIZE_BUDGET_BYTES / MB} MB`, async () => {
    const size = Number(await inspect(IMAGE, '{{.Size}}'));
    const base = Number(await inspect(BASE_IMAGE, '{{.Size}}'));
    report(`image ${IMAGE}: ${(size / MB).toFixed(1)} MB; base ${BASE_IMAGE}: ${(base / MB).toFixed(1)} MB; added ${((size - base) / MB).toFixed(1)} MB (budget ${SIZE_BUDGET_BYTES / MB} MB)`);
    expect(size - base).toBeLessThanOrEqual(SIZE_BUDGET_BYTES);
    expect(size - base).toBeGreaterThan(0);
  });
});
