/**
 * Type-checks Kubernetes objects against `kubernetes-types`: each object becomes an object literal
 * assigned to its declared type, compiled in memory with the TypeScript API. Object literals get
 * excess-property checks, so a misspelled field anywhere in an object is a compile error.
 */
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT, type K8sObject } from './manifests';

/** apiVersion → the kubernetes-types module that declares its kinds. */
function typesModule(apiVersion: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  // networking.k8s.io → networking; kubernetes-types drops the .k8s.io suffix.
  return `kubernetes-types/${group.replace(/\.k8s\.io$/, '')}/${version}`;
}

/** The generated source: one import per type, one typed constant per object. */
export function typedSource(objects: readonly K8sObject[]): string {
  const imports = new Map<string, string>();
  const declarations = objects.map((o, i) => {
    const alias = `${o.kind}_${o.apiVersion.replace(/[^A-Za-z0-9]/g, '_')}`;
    imports.set(alias, `import type { ${o.kind} as ${alias} } from '${typesModule(o.apiVersion)}';`);
    return `// ${o.kind} ${o.metadata.name}\nexport const object${i}: ${alias} = ${JSON.stringify(o, null, 2)};`;
  });
  return [...[...imports.values()].sort(), '', ...declarations, ''].join('\n');
}

export interface TypeProblem {
  /** `Kind name` of the object the problem is in. */
  readonly object: string;
  readonly message: string;
}

/** Compiles the objects; returns every diagnostic, attributed to its object. */
export function typeCheck(objects: readonly K8sObject[]): TypeProblem[] {
  const source = typedSource(objects);
  // A virtual file inside the repository, so `kubernetes-types` resolves from node_modules.
  const fileName = join(REPO_ROOT, 'test', 'manifests', '__typed_manifests__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    // The literals need only the core types; the full default lib (DOM included) triples the time.
    lib: ['lib.es5.d.ts'],
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName ? ts.createSourceFile(name, source, languageVersion, true) : getSourceFile(name, languageVersion, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  host.getCurrentDirectory = () => dirname(fileName);

  const program = ts.createProgram({ rootNames: [fileName], options, host });
  const file = program.getSourceFile(fileName)!;
  const lines = source.split('\n');
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file?.fileName !== fileName || d.start === undefined) return { object: '(compiler)', message };
    const { line } = file.getLineAndCharacterOfPosition(d.start);
    // The nearest "// Kind name" comment above the error names the object.
    let at = line;
    while (at > 0 && !lines[at].startsWith('// ')) at--;
    return { object: lines[at].slice(3), message: `line ${line + 1}: ${message}` };
  });
}
