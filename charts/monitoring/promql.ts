/**
 * Just enough PromQL reading to check a rule against the app: which metric names an expression
 * selects. Strings, label matchers, ranges, grouping clauses, function calls and keywords are
 * removed; what remains are metric names (and numbers, skipped).
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

/** Metric names an expression selects, sorted and unique. */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/\$\w+|\$\{[^}]*\}/g, ' '); // Grafana variables ($__rate_interval)
  const names = new Set<string>();
  // Numbers and durations (5m, 1e3) are matched whole, so their letters never pass for names.
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*|\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*/gi)) {
    const name = m[0];
    if (/^\d/.test(name)) continue;
    const after = stripped.slice(m.index! + name.length).trimStart();
    if (after.startsWith('(')) continue; // a function or aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names].sort();
}
