// `npm run bench:own-text [-- --rss-mb N --threads 1,2 --engines shardtrain,tfjs]`: the targets of
// "Train on your own text" (README), measured, never asserted by a unit test:
//   round trip  the README's prepare → train → sample on test/fixtures/sotu-text, each command as printed
//               (npx included), in a scratch directory (scripts/readme-blocks.ts); target ≤ 60 s in all.
//               The export, the fourth command, is timed too but not part of the target.
//   memory      training on a synthetic N MB train.bin of GPT-2 ids (default 1,000 MB), against the same
//               run on a 2 MB one: how much more the process' peak RSS is, as a multiple of the file's size
//               (target ≤ 1.1×), at 1 and 2 threads (the ids are held once, in shared memory, whatever the
//               thread count). Each run is a fresh process (`--child`); peak RSS is getrusage's ru_maxrss.

import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Trainer } from '../src/index.js';
import { readmeWorkdir, runLine, shellBlockAfter } from './readme-blocks.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function roundTrip(): Promise<void> {
  const lines = shellBlockAfter(readFileSync(join(root, 'README.md'), 'utf8'), '## Train on your own text');
  const dir = readmeWorkdir(root, 'bench-own-text');
  process.stdout.write('| command | time |\n|---|---:|\n');
  let total = 0;
  try {
    for (const [i, line] of lines.entries()) {
      const r = await runLine(line, dir);
      if (r.code !== 0) throw new Error(`${line}: exit ${r.code}: ${r.stderr.split('\n')[0]}`);
      if (i < 3) total += r.seconds;
      process.stdout.write(`| \`${line}\` | ${r.seconds.toFixed(1)} s |\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\nprepare → train → sample: ${total.toFixed(1)} s (target ≤ 60 s)\n`);
}

/** `mb` MB of GPT-2 ids (a fixed LCG's, < 50,257) as train.bin, and a small val.bin; nanoGPT's layout (no meta). */
function syntheticDir(mb: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'bench-own-text-'));
  const piece = new Uint16Array(1 << 22);
  let x = 12345;
  for (let i = 0; i < piece.length; i++) piece[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % 50257;
  const write = (file: string, bytes: number) => {
    const fd = openSync(join(dir, file), 'w');
    for (let left = bytes; left > 0; left -= piece.byteLength) writeSync(fd, new Uint8Array(piece.buffer, 0, Math.min(piece.byteLength, left)));
    closeSync(fd);
  };
  write('train.bin', Math.round((mb * 1e6) / 2) * 2);
  write('val.bin', 20000);
  return dir;
}

/** In a fresh process: 20 steps and an evaluation of a small GPT on `dir`; prints the peak RSS. */
async function child(dir: string, threads: number, engine: string): Promise<void> {
  const trainer = await Trainer.create({
    config: {
      model: { module: 'gpt', options: { data: dir, tokenizer: 'gpt2', contextLength: 32, embedding: 32, heads: 2, layers: 1, mlpRatio: 2, evalWindows: 8 } },
      engine: engine as 'shardtrain' | 'tfjs',
      steps: 20,
      batchSize: 8,
      evalBatch: 8,
      samples: 0,
    },
    threads,
  });
  try {
    while (trainer.globalStep < 20) await trainer.step();
    await trainer.evaluate();
  } finally {
    await trainer.close();
  }
  process.stdout.write(JSON.stringify({ maxRss: process.resourceUsage().maxRSS * 1024 }));
}

function peakRss(dir: string, threads: number, engine: string): number {
  const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, String(threads), engine], { encoding: 'utf8' });
  if (p.status !== 0) throw new Error(`bench-own-text child (${engine}, ${threads} threads): ${p.stderr.split('\n').filter((l) => l.trim())[0]}`);
  return (JSON.parse(p.stdout) as { maxRss: number }).maxRss;
}

function memory(mb: number): void {
  const big = syntheticDir(mb);
  const small = syntheticDir(2);
  const file = Math.round((mb * 1e6) / 2) * 2;
  try {
    process.stdout.write(`\ntraining on a ${(file / 1e6).toFixed(0)} MB train.bin vs a 2 MB one (GPT-2 ids; GPT 1 × 32, context 32; 20 steps of 8 windows and an evaluation), peak RSS:\n\n`);
    process.stdout.write('| engine | threads | 2 MB | big | grew by | × the file |\n|---|---:|---:|---:|---:|---:|\n');
    for (const engine of flag('--engines', 'shardtrain').split(',')) {
      for (const threads of flag('--threads', '1,2').split(',').map(Number)) {
        const base = peakRss(small, threads, engine);
        const peak = peakRss(big, threads, engine);
        const grew = peak - base;
        const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
        process.stdout.write(`| ${engine} | ${threads} | ${mib(base)} | ${mib(peak)} | ${(grew / 1e6).toFixed(0)} MB | ${(grew / file).toFixed(3)}× |\n`);
      }
    }
  } finally {
    rmSync(big, { recursive: true, force: true });
    rmSync(small, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3], Number(process.argv[4]), process.argv[5]);
  if (!process.argv.includes('--no-round-trip')) await roundTrip();
  if (!process.argv.includes('--no-memory')) memory(Number(flag('--rss-mb', '1000')));
}

await main();
