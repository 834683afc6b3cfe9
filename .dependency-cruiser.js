/**
 * Dependency rules, checked by `npm test` (pretest: `npm run -s depcheck`). The map they enforce
 * is in README.md ("Architecture"):
 * - no cycles, type-only imports included (they still tie two files' designs together);
 * - a domain (any folder of app/ that is not part of the kernel below) uses another domain only
 *   through that domain's index.ts, its public face; its other files are its own business;
 * - the kernel (shared/, queue/) knows no domain; app/ knows nothing of test/ or bench/; nothing
 *   but bench/ itself imports bench/.
 * The composition roots (app/api.ts, app/worker/index.ts, app/main.ts) are outside every domain
 * and may wire any file.
 */
const KERNEL = '(?:shared|queue|http|db|worker|generated)';

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle means neither side can be understood, tested or moved alone.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'domain-through-its-index',
      severity: 'error',
      comment: "Use another domain through its index.ts; move what both need to app/shared/ instead of reaching into the other's files.",
      from: { path: `^app/(?!${KERNEL}/)([^/]+)/` },
      to: { path: `^app/(?!${KERNEL}/)([^/]+)/(?!index\\.ts$)`, pathNot: ['^app/$1/'] },
    },
    {
      name: 'kernel-knows-no-domain',
      severity: 'error',
      comment: 'shared/ and queue/ are used by every domain, so they cannot depend on one.',
      from: { path: '^app/(shared|queue)/' },
      to: { path: `^app/(?!${KERNEL}/)[^/]+/` },
    },
    {
      name: 'app-not-to-tests',
      severity: 'error',
      comment: 'Production code must not depend on test or benchmark code.',
      from: { path: '^app/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'nothing-imports-bench',
      severity: 'error',
      comment: 'Benchmarks may use test/support; nothing uses the benchmarks.',
      from: { pathNot: '^bench/' },
      to: { path: '^bench/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^app/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
