// What `shardtrain prepare` reads: the files named, and the files below each folder named whose name
// matches the glob (default *.txt and *.md), in a stable order: the inputs as given, each folder's files
// sorted by their path. Hidden files and folders (a name starting with '.') and symbolic links to folders
// are not followed. A file found twice (named, and inside a named folder) is read once.

import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

export interface Source {
  /** The file read. */
  readonly path: string;
  /** The name recorded in meta.json: the path as given or found, '-' for standard input. */
  readonly name: string;
  readonly bytes: number;
}

export const kDefaultGlob = '*.{txt,md}';

/**
 * A glob as a RegExp over '/'-separated paths: `*` (any characters but '/'), `**` (any, '/' included),
 * `?`, `{a,b}` and `[...]`. A glob without '/' is matched against the file's name alone, at any depth.
 */
export function globRegExp(glob: string): RegExp {
  if (glob.length === 0) throw new RangeError('--glob is empty');
  let re = '';
  let depth = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // '**/' matches zero or more folders; a '**' elsewhere anything at all.
        if (glob[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i++;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      re += '(?:';
      depth++;
    } else if (c === '}' && depth > 0) {
      re += ')';
      depth--;
    } else if (c === ',' && depth > 0) re += '|';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) throw new RangeError(`--glob ${JSON.stringify(glob)}: '[' without a closing ']'`);
      const body = glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
      re += `[${body}]`;
      i = end;
    } else re += c.replace(/[.+^$|()\\\]]/g, '\\$&');
  }
  if (depth > 0) throw new RangeError(`--glob ${JSON.stringify(glob)}: '{' without a closing '}'`);
  return new RegExp(`^${re}$`, 'u');
}

/** The files below `dir` (as '/'-separated paths relative to it), sorted, hidden ones left out. */
function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  const entries = readdirSync(join(dir, prefix), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(dir, rel));
    else if (e.isFile() || (e.isSymbolicLink() && statSync(join(dir, rel), { throwIfNoEntry: false })?.isFile() === true)) out.push(rel);
  }
  return out;
}

/** Every input as a list of sources; `stdin` stands for '-' (a file the caller wrote standard input to). */
export function listSources(inputs: readonly string[], glob: string, stdin?: string): Source[] {
  const match = globRegExp(glob);
  const byName = !glob.includes('/');
  const seen = new Set<string>();
  const out: Source[] = [];
  const add = (path: string, name: string): void => {
    const real = realpathSync(path);
    if (seen.has(real)) return;
    seen.add(real);
    out.push({ path, name, bytes: statSync(path).size });
  };
  for (const input of inputs) {
    if (input === '-') {
      if (stdin === undefined) throw new RangeError("'-' (standard input) is given but no standard input was read");
      out.push({ path: stdin, name: '-', bytes: statSync(stdin).size });
      continue;
    }
    const st = statSync(input, { throwIfNoEntry: false });
    if (st === undefined) throw new RangeError(`${input}: no such file or directory`);
    if (st.isDirectory()) {
      for (const rel of walk(input)) {
        if (match.test(byName ? rel.slice(rel.lastIndexOf('/') + 1) : rel)) add(join(input, rel), join(input, rel).split(sep).join('/'));
      }
    } else if (st.isFile()) add(input, input.split(sep).join('/'));
    else throw new RangeError(`${input}: not a file or directory`);
  }
  return out;
}
