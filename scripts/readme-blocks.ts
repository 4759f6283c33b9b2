// The README's shell blocks, run as written: for test/readme.test.ts (that they work) and
// scripts/bench-own-text.ts (how long they take). The commands run with `sh` in a scratch directory under
// dist/, where `npx shardtrain` finds this package's bin and `test/` and `config/` are the repository's
// own (symbolic links), so that every path in them means what it means from the repository's root while
// what they write (data/, runs/) lands in the scratch directory.

import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/** The command lines of the first ```sh block after the heading `heading` (blank lines left out). */
export function shellBlockAfter(markdown: string, heading: string): string[] {
  const at = markdown.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README: no heading "${heading}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(markdown.slice(at));
  if (block === null) throw new Error(`README: no sh block after "${heading}"`);
  return block[1].split('\n').filter((l) => l.trim() !== '');
}

/** A fresh scratch directory dist/<name> under `root`, with `test` and `config` linked to the repository's. */
export function readmeWorkdir(root: string, name: string): string {
  const dir = join(root, 'dist', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const d of ['test', 'config']) symlinkSync(join(root, d), join(dir, d));
  return dir;
}

export interface LineRun {
  readonly line: string;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** One command line through `sh -c` in `cwd`. */
export function runLine(line: string, cwd: string): Promise<LineRun> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile('sh', ['-c', line], { cwd, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ line, code, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
  });
}
