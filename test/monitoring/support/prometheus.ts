/**
 * Debian's `prometheus` and `promtool` for the monitoring suites: found on PATH (or PROMETHEUS_BIN
 * / PROMTOOL_BIN); a suite that needs them fails with a message saying how to install them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function binary(name: 'prometheus' | 'promtool'): string {
  const override = process.env[`${name.toUpperCase()}_BIN`];
  if (override) return override;
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/bin', '/usr/local/bin')) {
    if (dir && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  throw new Error(`${name} not found: install Debian's "prometheus" package (apt-get install -y --no-install-recommends prometheus; .ci/run does) or set ${name.toUpperCase()}_BIN`);
}

export function promtool(args: string[]): { code: number; output: string } {
  const r = spawnSync(binary('promtool'), args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
