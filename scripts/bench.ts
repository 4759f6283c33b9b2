// `npm run bench`: the same benchmark as `shardtrain bench` (src/cli/bench.ts), with the same flags, e.g.
//   npm run bench -- --sizes 1e7,5e7,1e8 --json bench.json --svg bench.svg
//   npm run bench -- --params 1e9 --threads 2
import { Command } from 'commander';
import { addBenchOptions, benchMain } from '../src/cli/bench.js';

const program = addBenchOptions(new Command('bench').description('time opt.step() against its baselines')).action(async (flags) => {
  await benchMain(flags, `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim());
});
await program.parseAsync(process.argv);
