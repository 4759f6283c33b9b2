// `shardtrain prepare INPUT... --out DIR [--tokenizer char|gpt2] [--eval-fraction F] [--seed N] [--glob G]
//  [--threads N] [--no-progress]`: see src/corpus/prepare.ts.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { prepare, prepareDefaults, type PrepareProgress } from '../corpus/prepare.js';
import { tokenizerNames, type TokenizerName } from '../models/tokenizer.js';
import { parseNumber, positiveInt } from './flags.js';

interface Flags {
  out: string;
  tokenizer: string;
  evalFraction: number;
  seed: number;
  glob: string;
  threads?: number;
  progress: boolean;
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** A bar per phase: MB read of the total, MB/s since the phase began, and cli-progress's ETA. */
function progressBar(): { update: (p: PrepareProgress) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | null = null;
  let phase = '';
  let t0 = 0;
  return {
    update(p) {
      if (p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        t0 = performance.now();
        bar = new cliProgress.SingleBar(
          { format: `${phase.padEnd(10)} {bar} {percentage}% | {done}/{all} MB | {rate} MB/s | ETA {eta_formatted}`, hideCursor: true, etaBuffer: 20, stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.totalBytes, 0, { done: '0.0', all: mb(p.totalBytes), rate: '-' });
      }
      const sec = (performance.now() - t0) / 1000;
      bar!.update(p.bytes, { done: mb(p.bytes), all: mb(p.totalBytes), rate: sec > 0 ? mb(p.bytes / sec) : '-' });
    },
    stop: () => bar?.stop(),
  };
}

export function registerPrepare(program: Command): void {
  program
    .command('prepare')
    .description('tokenize text files into a prepared directory: train.bin and val.bin (uint16 token ids, as nanoGPT writes them) and meta.json')
    .argument('<inputs...>', 'text files, folders (their *.txt and *.md files, recursively) or - for standard input')
    .requiredOption('-o, --out <dir>', 'output directory: new, empty, or a previous prepare\'s')
    .option('--tokenizer <name>', `${tokenizerNames.join(' or ')}: characters, or GPT-2's BPE (r50k_base)`, prepareDefaults.tokenizer)
    .option('--eval-fraction <f>', 'fraction held out: whole files when there are several, else the end of the text', parseNumber('--eval-fraction', (n) => n >= 0 && n < 1, 'a number in [0, 1)'), prepareDefaults.evalFraction)
    .option('--seed <n>', 'seeds which files are held out', parseNumber('--seed', (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer'), prepareDefaults.seed)
    .option('--glob <pattern>', 'files of a folder to read (a pattern without / matches the file name)', prepareDefaults.glob)
    .option('-t, --threads <n>', 'tokenizing threads (default: one per 32 MiB of input, at most all cores)', positiveInt('--threads'))
    .option('--no-progress', 'no progress bar')
    .action(async (inputs: string[], f: Flags) => {
      const bar = f.progress && process.stderr.isTTY === true ? progressBar() : null;
      try {
        const t0 = performance.now();
        const r = await prepare({ inputs, out: f.out, tokenizer: f.tokenizer as TokenizerName, evalFraction: f.evalFraction, seed: f.seed, glob: f.glob, threads: f.threads, onProgress: bar?.update });
        bar?.stop();
        const m = r.meta;
        const sec = (performance.now() - t0) / 1000;
        const bytes = m.sources.reduce((a, s) => a + s.bytes, 0);
        process.stdout.write(
          `prepared ${r.out}: ${m.tokenizer} tokenizer (${m.vocabSize} symbols), ${m.tokens.train} training tokens from ${m.files.train} file${m.files.train === 1 ? '' : 's'}, ` +
            `${m.tokens.val} held-out tokens ${m.split === 'files' ? `from ${m.files.val} file${m.files.val === 1 ? '' : 's'}` : 'from the end of the text'}; ` +
            `${mb(bytes)} MB in ${sec.toFixed(1)} s (${mb(bytes / Math.max(sec, 1e-9))} MB/s, ${r.threads} thread${r.threads === 1 ? '' : 's'})\n`,
        );
      } catch (err) {
        bar?.stop();
        process.stderr.write(`shardtrain prepare: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      }
    });
}
