/** The results table a benchmark prints: each figure with its target and whether it was met. */
import { writeFileSync } from 'node:fs';
import os from 'node:os';

export interface ResultRow {
  measure: string;
  value: string;
  /** e.g. "≥ 3,000 req/s"; empty when the row is informational. */
  target?: string;
  /** true met, false missed, undefined informational. */
  met?: boolean;
  note?: string;
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`,
  mb: (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`,
  ratio: (n: number) => n.toFixed(2),
};

/** A Markdown table (pastes into the README as it is). */
export function renderTable(rows: ResultRow[]): string {
  const lines = ['| measure | result | target | met |', '|---|---|---|---|'];
  for (const r of rows) {
    const met = r.met === undefined ? '' : r.met ? 'yes' : `**no**`;
    lines.push(`| ${r.measure} | ${r.value}${r.note ? ` (${r.note})` : ''} | ${r.target ?? ''} | ${met} |`);
  }
  return lines.join('\n');
}

/** CPUs, memory, Node, and the load average (1, 5, 15 min): a shared machine's figures vary with it. */
export function describeMachine(): string {
  return `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${fmt.mb(os.totalmem())} RAM, Node ${process.version}`;
}

/** The 1-minute load average now. */
export function loadAverage1(): number {
  return os.loadavg()[0];
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/**
 * Prints the report (title, context lines, the table, how many targets were missed) and writes
 * it as JSON to BENCH_JSON when set.
 */
export function printReport(report: { title: string; context: string[]; rows: ResultRow[]; figures: Record<string, number> }): void {
  console.log(`\n${report.title} (${new Date().toISOString()})`);
  for (const line of report.context) console.log(line);
  console.log(`\n${renderTable(report.rows)}`);
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(report, null, 2));
  const missed = report.rows.filter((r) => r.met === false).length;
  console.log(missed ? `\n${missed} target(s) missed.` : '\nAll targets met.');
}

/** Runs a benchmark's main and exits (spawned processes and pools must not keep it alive). */
export function runBenchmark(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
