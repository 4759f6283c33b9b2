// npm run profile:engine [-- --config config/char-lm.json --replicas 2 --steps 200]
// Where one replica's step goes on shardtrain's engine, phase by phase (one thread, a team of one): the
// phases of the replica's train pass timed over `steps` steps, sorted by total time, with the share of the step.

import { loadConfigFile } from '../src/api/train.js';
import { soloEngine } from '../test/fixtures/engine-harness.js';
import { DataOrder } from '../src/train/data-order.js';
import { isEngineBuiltin } from '../src/models/builtin-engines.js';
import { checkDataSet } from '../src/models/model-module.js';

const args = { config: 'config/char-lm.json', replicas: 2, steps: 200 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (key === 'config') args.config = argv[i + 1];
  else if (key === 'replicas' || key === 'steps') args[key] = Number(argv[i + 1]);
  else throw new Error(`profile-engine: unknown option ${argv[i]} (known: --config, --replicas, --steps)`);
}
const config = loadConfigFile(args.config);
if (!isEngineBuiltin(config.model.module)) throw new Error(`profile-engine: ${config.model.module} is not a built-in model`);
const micro = config.batchSize / (args.replicas * config.accumulateSteps);
const e = await soloEngine(config.model.module, config.model.options, config.seed, micro, { shardFloats: 1 << 24, members: 1 });
const order = new DataOrder(checkDataSet(e.data, config.model.module).train, config.batchSize, config.seed);
const program = e.runner.program({ ...e.shapes.train });
const times = new Map<string, number>();
for (const phase of program.phases) {
  const run = phase.run;
  (phase as { run: typeof run }).run = (m, n) => {
    const t0 = performance.now();
    run(m, n);
    times.set(phase.label, (times.get(phase.label) ?? 0) + performance.now() - t0);
  };
}
let copyIn = 0;
for (let s = 0; s < 20 + args.steps; s++) {
  if (s === 20) {
    times.clear();
    copyIn = 0;
  }
  const t0 = performance.now();
  e.runner.copyInSerial(1);
  copyIn += performance.now() - t0;
  e.runner.runSerial(e.shapes.train, 1, { set: e.data.train, indices: order.slice(s, 0, micro) });
}
const total = [...times.values()].reduce((a, b) => a + b, 0) + copyIn;
console.log(`${args.config}: micro-batch ${micro}, ${e.model.tensors.reduce((n, t) => n + t.size, 0)} params, ${(total / args.steps).toFixed(3)} ms per replica step (one thread), ${program.phases.length} phases`);
const rows = [...times.entries(), ['(params copied in)', copyIn] as [string, number]].sort((a, b) => b[1] - a[1]);
for (const [label, ms] of rows) console.log(`${(ms / args.steps).toFixed(4).padStart(9)} ms  ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${label}`);
