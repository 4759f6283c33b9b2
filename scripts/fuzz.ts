// `npm run fuzz -- --runs 100000 --seed 7`: the fuzz properties of test/fuzz.test.ts (defined once, in
// test/fuzz-properties.ts) with as many cases as asked. Prints cases and seconds per target; exit code 1
// with fast-check's report (seed, path, shrunk case) when one fails.
import { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzTargets } from '../test/fuzz-properties.js';

function count(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} must be a non-negative integer, got ${value}`);
    return n;
  };
}

const program = new Command('fuzz')
  .description('fuzz config loading and checkpoint loading with damaged input')
  .option('--runs <n>', 'cases per target', count('--runs'), 10_000)
  .option('--seed <n>', 'fast-check seed', count('--seed'), Date.now() % 2 ** 31)
  .option('--target <text>', 'only the targets whose name contains this')
  .action(async (opts: { runs: number; seed: number; target?: string }) => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-fuzz-'));
    try {
      console.log(`npm run fuzz -- --runs ${opts.runs} --seed ${opts.seed}${opts.target ? ` --target '${opts.target}'` : ''}`);
      for (const t of (await fuzzTargets(dir)).filter((t) => opts.target === undefined || t.name.includes(opts.target))) {
        const t0 = performance.now();
        const { failure, numRuns } = t.run({ numRuns: opts.runs, seed: opts.seed });
        console.log(`${t.name}: ${numRuns} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${failure ? 'FAILED' : 'ok'}`);
        if (failure) {
          console.log(failure);
          process.exitCode = 1;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
await program.parseAsync(process.argv);
