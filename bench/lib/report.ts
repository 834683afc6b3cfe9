/** The results table a benchmark prints: each figure with its target and whether it was met. */

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
