// The layout rule, read off the source: every import points one way, down this table, and no file imports
// itself back through others (no circle between files, none between folders). Type-only imports count: a
// type is a dependency too.
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Which folders each folder may import (besides itself). `index` is src/index.ts; `api` the subpath entries. */
const allowed: Readonly<Record<string, readonly string[]>> = {
  memory: [],
  plot: [],
  util: [],
  kernels: ['memory'],
  tfjs: ['kernels'],
  optim: ['kernels', 'memory'],
  parallel: ['optim', 'kernels', 'memory'],
  nn: ['parallel', 'kernels', 'memory'],
  models: ['nn', 'tfjs', 'parallel', 'kernels', 'memory', 'util'],
  corpus: ['models', 'parallel', 'util'],
  checkpoint: ['models', 'optim', 'memory', 'util'],
  train: ['checkpoint', 'models', 'nn', 'parallel', 'optim', 'kernels', 'memory', 'plot', 'tfjs', 'util'],
  compare: ['train', 'models', 'optim', 'memory', 'plot'],
  bench: ['parallel', 'optim', 'kernels', 'memory', 'plot', 'train', 'models', 'nn', 'tfjs'],
  cli: ['train', 'checkpoint', 'corpus', 'models', 'compare', 'bench'],
  api: ['train', 'checkpoint', 'compare', 'models', 'parallel', 'optim', 'kernels', 'memory', 'tfjs'],
  index: ['train', 'checkpoint', 'models', 'parallel', 'optim', 'kernels', 'memory'],
  types: [],
  workers: ['parallel'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative specifiers of every import, export-from and dynamic import() in `text`. */
export function importSpecifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.[^']+)'/gm)].map((m) => m[1]);
  return found;
}

/** The folder a file belongs to: src/<folder>/…, src/index.ts → index, workers/… → workers. */
function folderOf(file: string): string {
  const rel = relative(root, file).split(/[\\/]/);
  if (rel[0] === 'workers') return 'workers';
  return rel[1] === 'index.ts' ? 'index' : rel[1];
}

/** Strongly connected components with more than one file (or a file importing itself): the circles. */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('layout: imports point one way', () => {
  const files = [...sourceFiles(join(root, 'src')), ...sourceFiles(join(root, 'workers'))];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = importSpecifiers(readFileSync(file, 'utf8')).map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
    graph.set(file, targets);
  }

  it('reads the imports it checks', () => {
    expect(files.length).to.be.greaterThan(40);
    // A sample the reader must see: a static import, a type import and a dynamic import().
    expect(importSpecifiers("import { a } from './x.js';\nimport type { B } from '../y.js';\nconst m = await import('./z.js');")).to.deep.equal(['./x.js', '../y.js', './z.js']);
    expect(importSpecifiers("export { a } from './x.js';\n// import { c } from './commented.js';")).to.deep.equal(['./x.js']);
  });

  it('every relative import names a file that exists', () => {
    const missing = [...graph].flatMap(([file, targets]) => targets.filter((t) => !graph.has(t)).map((t) => `${relative(root, file)} → ${relative(root, t)}`));
    expect(missing).to.deep.equal([]);
  });

  it('no folder imports a folder above it or beside it (the table in this test)', () => {
    const upward = [...graph].flatMap(([file, targets]) => {
      const from = folderOf(file);
      expect(allowed, `folder of ${relative(root, file)}`).to.have.property(from);
      return targets.filter((t) => folderOf(t) !== from && !allowed[from].includes(folderOf(t))).map((t) => `${relative(root, file)} → ${relative(root, t)}`);
    });
    expect(upward).to.deep.equal([]);
  });

  it('0 circles between files', () => {
    expect(circles(graph).map((c) => c.map((f) => relative(root, f)))).to.deep.equal([]);
  });

  it('0 circles between folders', () => {
    const folders = new Map<string, string[]>();
    for (const [file, targets] of graph) {
      const from = folderOf(file);
      const to = new Set([...(folders.get(from) ?? []), ...targets.map(folderOf).filter((f) => f !== from)]);
      folders.set(from, [...to]);
    }
    expect(circles(folders)).to.deep.equal([]);
  });

  it('the circle finder finds a circle when there is one', () => {
    const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(circles(g).map((c) => c.sort())).to.deep.equal([['a', 'b', 'c']]);
  });
});
