// npm run bench:step [-- --params 1e8 --threads 2 --runs 3 --steps 9]
// The default optimizer step against the native C loop, as the training-speed issue asks for it: best step
// vs best step, in `runs` interleaved rounds (native, then each shardtrain mode, then again), and the median
// of the rounds' ratios. Modes: `throw` with gradients written through the live views (the step scans them),
// `checked` (the default policy, gradients given to setGrads, checked as they are copied: the trainer's
// path), and `ignore` (no check at all).

import { availableParallelism, cpus, loadavg } from 'node:os';
import { buildNative, median, runNative } from '../src/bench/baselines.js';
import { newOptimizer, stepTimes, type BenchCheck } from '../src/bench/measure.js';

interface Args {
  params: number;
  threads: number;
  runs: number;
  steps: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { params: 1e8, threads: availableParallelism(), runs: 3, steps: 9 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = Number(argv[i + 1]);
    if (!(key in args)) throw new Error(`bench-step: unknown option --${key} (known: --params, --threads, --runs, --steps)`);
    if (!Number.isInteger(value) || value < 1) throw new Error(`bench-step: --${key} must be a positive integer, got ${argv[i + 1]}`);
    args[key as keyof Args] = value;
  }
  return args;
}

const modes: readonly BenchCheck[] = ['throw', 'checked', 'ignore'];

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const nb = buildNative();
  if (nb.binary === null) throw new Error(nb.note);
  const ratios = new Map<BenchCheck, number[]>(modes.map((m) => [m, []]));
  const bests = new Map<string, number[]>();
  const keep = (what: string, s: number) => bests.set(what, [...(bests.get(what) ?? []), s]);
  try {
    for (let run = 0; run < a.runs; run++) {
      const native = runNative(nb, a.params, a.threads, a.steps);
      if (native === null) throw new Error('the native loop failed (out of memory?)');
      keep('native', native.best);
      for (const mode of modes) {
        const b = await newOptimizer(a.params, a.threads, 'pool', mode);
        try {
          const best = Math.min(...(await stepTimes(b, a.steps, 2)));
          keep(mode, best);
          ratios.get(mode)!.push(native.best / best);
          console.error(`run ${run + 1}/${a.runs}: native ${(native.best * 1e3).toFixed(2)} ms, ${mode} ${(best * 1e3).toFixed(2)} ms (${(native.best / best).toFixed(2)}×)`);
        } finally {
          await b.opt.close();
        }
      }
    }
  } finally {
    nb.cleanup();
  }
  console.log(`${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, Node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`\`npm run bench:step -- --params ${a.params} --threads ${a.threads} --runs ${a.runs} --steps ${a.steps}\`\n`);
  console.log('| step | best step, ms (median of runs) | × native (median of the runs\' ratios) |');
  console.log('|---|---:|---:|');
  console.log(`| native C (OpenMP, ${a.threads} threads) | ${(median(bests.get('native')!) * 1e3).toFixed(2)} | 1.00× |`);
  const label: Record<BenchCheck, string> = {
    throw: "onNonFinite 'throw' (default), gradients written through the views: scanned",
    checked: "onNonFinite 'throw' (default), gradients given to setGrads: checked as copied",
    ignore: "onNonFinite 'ignore': no check",
    skip: "onNonFinite 'skip'",
  };
  for (const m of modes) console.log(`| ${label[m]} | ${(median(bests.get(m)!) * 1e3).toFixed(2)} | ${median(ratios.get(m)!).toFixed(2)}× |`);
}

await main();
