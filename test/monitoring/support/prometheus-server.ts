/**
 * A throwaway Prometheus (Debian's binary) on a loopback port: generated configuration, its own
 * storage directory, scraping only 127.0.0.1 targets; stopped and removed by `stop()`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, waitForHttp } from '../../support/processes';
import { binary } from './prometheus';

export interface PrometheusServer {
  url: string;
  /** Instant query; throws with Prometheus' error when the expression is invalid. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  queryRange(expr: string, startSeconds: number, endSeconds: number, stepSeconds: number): Promise<{ metric: Record<string, string>; values: [number, string][] }[]>;
  alerts(): Promise<{ labels: Record<string, string>; state: 'pending' | 'firing'; activeAt: string }[]>;
  output(): string;
  stop(): Promise<void>;
}

export interface ScrapeTarget {
  job: string;
  port: number;
  /** Labels the PodMonitors would add in a cluster (namespace, app_kubernetes_io_name). */
  labels: Record<string, string>;
}

export async function startPrometheus(opts: { targets: ScrapeTarget[]; rules: unknown; intervalSeconds: number }): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'easeemail-prometheus-'));
  const port = await freePort();
  writeFileSync(join(dir, 'rules.yml'), stringify(opts.rules));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: `${opts.intervalSeconds}s`, evaluation_interval: `${opts.intervalSeconds}s`, scrape_timeout: `${opts.intervalSeconds}s` },
      rule_files: [join(dir, 'rules.yml')],
      scrape_configs: opts.targets.map((t) => ({ job_name: t.job, static_configs: [{ targets: [`127.0.0.1:${t.port}`], labels: t.labels }] })),
    }),
  );
  const child = spawn(
    binary('prometheus'),
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`${url}/-/ready`, { timeoutMs: 60_000 });
  } catch (err) {
    await stop();
    throw new Error(`Prometheus did not become ready: ${(err as Error).message}\n${out}`);
  }
  const api = async (path: string, params: Record<string, string>) => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: { result?: unknown; alerts?: unknown }; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.error}`);
    return body.data;
  };
  return {
    url,
    query: async (expr) => (await api('query', { query: expr })).result as never,
    queryRange: async (expr, start, end, step) => (await api('query_range', { query: expr, start: String(start), end: String(end), step: String(step) })).result as never,
    alerts: async () => (await api('alerts', {})).alerts as never,
    output: () => out,
    stop,
  };
}
