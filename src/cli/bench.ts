// `shardtrain bench` and `npm run bench` (scripts/bench.ts): flags → BenchOptions, then the report printed as
// a markdown table; `--json` and `--svg` write the report and a chart of params/s against threads. The
// measuring is in src/bench/.

import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { benchChecks, runBench, type BenchCheck, type BenchOptions } from '../bench/measure.js';
import { chartSvg, formatReport } from '../bench/report.js';


function parseCount(s: string, what: string): number {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 16) throw new Error(`${what} must be an integer ≥ 16 (e.g. 1e7), got "${s}"`);
  return n;
}

function parseList(s: string, what: string): number[] {
  return s.split(',').map((x) => parseCount(x, what));
}

interface CliFlags {
  sizes?: string;
  params?: string;
  threads?: string;
  steps: string;
  checks?: string;
  native: boolean;
  tfjs: boolean;
  tfjsSizes: string;
  plain: boolean;
  latency: boolean;
  json?: string;
  svg?: string;
}

export function benchOptionsFromFlags(f: CliFlags): BenchOptions {
  const sizes = f.params ? [parseCount(f.params, '--params')] : f.sizes ? parseList(f.sizes, '--sizes') : [1e7, 5e7];
  const threads = f.threads
    ? f.threads.split(',').map((x) => {
        const t = Number(x);
        if (!Number.isInteger(t) || t < 1) throw new Error(`--threads must be positive integers, got "${x}"`);
        return t;
      })
    : Array.from({ length: availableParallelism() }, (_, i) => i + 1);
  const steps = Number(f.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got "${f.steps}"`);
  // Two optimizers of a huge model do not fit side by side: one check policy by default above 2e8.
  const checks = (f.checks ?? (Math.max(...sizes) > 2e8 ? 'throw' : 'throw,checked,ignore')).split(',') as BenchCheck[];
  for (const c of checks) if (!benchChecks.includes(c)) throw new Error(`--checks must list ${benchChecks.join(', ')}, got "${c}"`);
  return {
    sizes,
    threads,
    steps,
    checks,
    native: f.native,
    tfjsSizes: f.tfjs ? parseList(f.tfjsSizes, '--tfjs-sizes') : [],
    plain: f.plain,
    latency: f.latency && !f.params,
    json: f.json,
    svg: f.svg,
    log: (line) => console.error(line),
  };
}

export async function benchMain(flags: CliFlags, command: string): Promise<void> {
  const o = benchOptionsFromFlags(flags);
  const report = await runBench(o, command);
  console.log(formatReport(report));
  if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
  if (o.svg) writeFileSync(o.svg, await chartSvg(report));
}

export function addBenchOptions(cmd: Command): Command {
  return cmd
    .option('--sizes <list>', 'model sizes in params, comma-separated (default 1e7,5e7)')
    .option('--params <n>', 'one model size (e.g. 1e9); skips the latency section')
    .option('--threads <list>', 'thread counts, comma-separated (default 1..availableParallelism)')
    .option('--steps <n>', 'timed steps per measurement; the median is reported', '7')
    .option('--checks <list>', "what to time: onNonFinite policies throw, skip, ignore (gradients written through the views), and checked (throw, gradients given to setGrads); default throw,checked,ignore (throw alone above 2e8 params)")
    .option('--no-native', 'skip the native C baseline')
    .option('--no-tfjs', 'skip tfjs train.adam')
    .option('--tfjs-sizes <list>', 'sizes at which to run tfjs (slow)', '1e7')
    .option('--no-plain', 'skip the plain JS loop')
    .option('--no-latency', 'skip the 100 k-param latency section')
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <file>', 'write a chart of params/s vs threads (vega-lite)');
}

export function registerBench(program: Command): void {
  addBenchOptions(program.command('bench').description('time opt.step() against native C, plain JS and tfjs baselines (see README, Performance)')).action(
    async (flags: CliFlags) => {
      try {
        await benchMain(flags, `shardtrain bench ${process.argv.slice(3).join(' ')}`.trim());
      } catch (err) {
        process.stderr.write(`shardtrain bench: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      }
    },
  );
}
