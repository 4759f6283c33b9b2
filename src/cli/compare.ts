// `shardtrain compare --config FILE [--conventions a,b] [--lr a,b] [--weight-decay 0,1e-2 |
//  --normalized-weight-decay λn | --timescale τ] [--seeds N] [--steps N] [--out DIR] [--force]`: see src/compare/index.ts.
import type { Command } from 'commander';
import { compareDefaults, parseNumberList, runCompare, splitList } from '../compare/index.js';
import { kDefaultConfig } from '../train/run.js';
import { collect, kSetHelp } from './flags.js';

interface Flags {
  config?: string;
  set: string[];
  conventions?: string;
  weightDecay?: string;
  normalizedWeightDecay?: string;
  timescale?: string;
  lr?: string;
  seeds?: string;
  steps?: string;
  evalPoints?: string;
  threads?: string;
  out?: string;
  force?: boolean;
  exclusionExample: boolean;
  progress: boolean;
}

/** Integers are checked by runCompare (one message for the API and the CLI); here only "is it a number". */
const num = (x: string | undefined): number | undefined => (x === undefined ? undefined : Number(x));

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('train the same model once per (weight-decay convention, lr, weight decay, seed) and compare: summary.md/json, loss.svg, heatmap.svg, lr-heatmap.svg (with --lr a,b,…)')
    .option('-c, --config <file>', 'training config (JSON); default: the built-in config/char-lm.json')
    .option('--set <key=value>', kSetHelp, collect, [])
    .option('--conventions <list>', `comma-separated conventions, each optionally +cautious (cautious weight decay: pytorch,pytorch+cautious) (default: all: ${compareDefaults.conventions.join(',')})`)
    .option('--weight-decay <list>', 'comma-separated λ values (default: 0,1e-4,1e-2,1e-1)')
    .option('--normalized-weight-decay <list>', "λ_norm values of Loshchilov & Hutter: λ = λ_norm·√(b/(B·T)) (instead of --weight-decay)")
    .option('--timescale <list>', "τ values in epochs: each run's λ = 1/(r_peak·τ·N/B) from its own lr and convention (instead of --weight-decay)")
    .option('--lr <list>', "comma-separated base learning rates: an lr × weight-decay grid per convention (default: the config's lr)")
    .option('--seeds <n>', 'seeds per cell: config.seed, +1, … (default 3)')
    .option('-s, --steps <n>', 'steps per run (overrides config.steps)')
    .option('--eval-points <n>', 'held-out evaluations per run, besides step 0 (default 10)')
    .option('-t, --threads <n>', 'worker threads per run (default: all cores)')
    .option('-o, --out <dir>', 'output directory (default: runs/compare-<config>-<time>)')
    .option('-f, --force', 'overwrite a previous compare in --out')
    .option('--no-exclusion-example', 'skip the runs with the exclusion rule toggled')
    .option('--no-progress', 'print a line per run instead of a progress bar')
    .action(async (f: Flags) => {
      try {
        const command = `shardtrain ${process.argv.slice(2).join(' ')}`;
        if (f.config === undefined) process.stdout.write(`shardtrain compare: no --config given: comparing on the built-in default, ${kDefaultConfig}\n`);
        await runCompare({
          configPath: f.config ?? kDefaultConfig,
          sets: f.set,
          conventions: f.conventions === undefined ? undefined : splitList(f.conventions),
          weightDecays: f.weightDecay === undefined ? undefined : parseNumberList('--weight-decay', f.weightDecay),
          normalizedWeightDecays: f.normalizedWeightDecay === undefined ? undefined : parseNumberList('--normalized-weight-decay', f.normalizedWeightDecay),
          timescales: f.timescale === undefined ? undefined : parseNumberList('--timescale', f.timescale),
          lrs: f.lr === undefined ? undefined : parseNumberList('--lr', f.lr),
          seeds: num(f.seeds),
          steps: num(f.steps),
          evalPoints: num(f.evalPoints),
          threads: num(f.threads),
          out: f.out,
          force: f.force === true,
          exclusionExample: f.exclusionExample,
          progress: f.progress === false ? false : undefined,
          command,
        });
      } catch (err) {
        process.stderr.write(`shardtrain compare: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      }
    });
}
