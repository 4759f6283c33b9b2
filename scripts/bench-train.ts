// npm run bench:train [-- --config config/char-lm.json --seconds 6 --batch N]
// samples/s of the default model: shardtrain at 1 and 2 threads (one replica per thread) vs a plain
// single-thread tfjs loop (same model, same batch, same backend, tfjs Adam). Each configuration runs in
// its own child process so that its peak RSS (process.resourceUsage().maxRSS) is its own.

import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Trainer, type TrainConfig } from '../src/index.js';
import { loadConfigFile } from '../src/api/train.js';
import { DataOrder, gatherBatch } from '../src/train/data-order.js';
import { checkDataSet, loadModelModule, modelModuleUrl } from '../src/train/model-module.js';
import { initTf, tf, tfl } from '../src/tfjs/tf.js';

interface Args {
  config: string;
  seconds: number;
  /** Runs of each configuration, interleaved; the best is reported (the machine may be shared). */
  repeat: number;
  batch?: number;
  one?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { config: 'config/char-lm.json', seconds: 5, repeat: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i].replace(/^--/, ''), argv[i + 1]];
    if (key === 'config' || key === 'one') args[key] = value;
    else if (key === 'seconds' || key === 'batch' || key === 'repeat') args[key] = Number(value);
    else throw new Error(`bench-train: unknown option --${key} (known: --config, --seconds, --repeat, --batch)`);
  }
  return args;
}

interface Result {
  readonly what: string;
  readonly samplesPerSec: number;
  readonly msPerStep: number;
  readonly maxRssMiB: number;
  readonly params: number;
}

async function timeLoop(seconds: number, step: () => Promise<void>): Promise<{ steps: number; elapsed: number }> {
  for (let i = 0; i < 20; i++) await step(); // warm-up: threads, wasm, first allocations
  const t0 = performance.now();
  let steps = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await step();
    steps++;
  }
  return { steps, elapsed: (performance.now() - t0) / 1000 };
}

async function benchShardtrain(config: TrainConfig, threads: number, seconds: number): Promise<Result> {
  const trainer = await Trainer.create({ config: { ...config, replicas: threads, steps: 1_000_000 }, threads });
  try {
    const { steps, elapsed } = await timeLoop(seconds, async () => void (await trainer.step()));
    return {
      what: `shardtrain, ${threads} thread${threads > 1 ? 's' : ''} (R=${threads})`,
      samplesPerSec: (steps * config.batchSize) / elapsed,
      msPerStep: (1000 * elapsed) / steps,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      params: trainer.optimizer.layout.totalSize,
    };
  } finally {
    await trainer.close();
  }
}

async function benchPlainTfjs(config: TrainConfig, seconds: number): Promise<Result> {
  await initTf(config.backend);
  const mod = await loadModelModule(modelModuleUrl(config.model.module));
  const model = mod.createModel({ tf, tfl, options: config.model.options, seed: config.seed });
  const data = await mod.loadData({ options: config.model.options, seed: config.seed });
  const e = data.train;
  const n = config.batchSize;
  const order = new DataOrder(checkDataSet(data, config.model.module).train, n, config.seed);
  const adam = tf.train.adam(config.optimizer.lr, config.optimizer.betas[0], config.optimizer.betas[1], config.optimizer.eps);
  let t = 0;
  const step = async (): Promise<void> => {
    const b = gatherBatch(e, order.slice(t++, 0, n));
    tf.tidy(() => {
      const xt = tf.tensor(b.x, b.xShape as number[], b.x instanceof Int32Array ? 'int32' : 'float32');
      const yt = tf.tensor(b.y, b.yShape as number[], b.y instanceof Int32Array ? 'int32' : 'float32');
      const loss = adam.minimize(() => mod.loss({ tf, model, x: xt, y: yt }), true);
      loss?.dataSync();
    });
  };
  const { steps, elapsed } = await timeLoop(seconds, step);
  return {
    what: `plain tfjs loop, 1 thread (tf.train.adam, ${tf.getBackend()})`,
    samplesPerSec: (steps * n) / elapsed,
    msPerStep: (1000 * elapsed) / steps,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    params: model.countParams(),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const loaded = loadConfigFile(args.config);
  const config: TrainConfig = args.batch ? { ...loaded, batchSize: args.batch } : loaded;
  if (args.one !== undefined) {
    const result = args.one === 'plain' ? await benchPlainTfjs(config, args.seconds) : await benchShardtrain(config, Number(args.one), args.seconds);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const kinds = ['plain', '1', '2'];
  const runs: Result[][] = kinds.map(() => []);
  const load0 = loadavg()[0];
  for (let rep = 0; rep < args.repeat; rep++) {
    kinds.forEach((one, k) => {
      const child = spawnSync(process.execPath, [self, ...process.argv.slice(2), '--one', one], { encoding: 'utf8' });
      if (child.status !== 0) throw new Error(`bench child (${one}) failed: ${child.stderr}`);
      runs[k].push(JSON.parse(child.stdout.trim().split('\n').pop()!) as Result);
    });
  }
  const results = runs.map((rs) => rs.reduce((best, r) => (r.samplesPerSec > best.samplesPerSec ? r : best)));
  const [plain, one, two] = results;
  process.stdout.write(
    `config ${args.config}: batch ${config.batchSize}, ${plain.params} params, backend ${config.backend}; ${args.seconds} s per run after 20 warm-up steps, ` +
      `best of ${args.repeat} interleaved runs; ${cpus().length} cores, load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)}\n\n`,
  );
  process.stdout.write('| run | samples/s, best (all runs) | ms/step | peak RSS (MiB) |\n|---|---:|---:|---:|\n');
  results.forEach((r, k) => {
    const all = runs[k].map((x) => x.samplesPerSec.toFixed(0)).join(', ');
    process.stdout.write(`| ${r.what} | ${r.samplesPerSec.toFixed(0)} (${all}) | ${r.msPerStep.toFixed(2)} | ${r.maxRssMiB.toFixed(0)} |\n`);
  });
  process.stdout.write(`\n2 threads / 1 thread: ${(two.samplesPerSec / one.samplesPerSec).toFixed(2)}×;  2 threads / plain tfjs: ${(two.samplesPerSec / plain.samplesPerSec).toFixed(2)}× (targets ≥ 1.7×)\n`);
  const stateBytes = (16 + 4 * 2) * two.params;
  process.stdout.write(
    `memory: shared states (16 + 4·R bytes/param, R = 2) = ${(stateBytes / 2 ** 20).toFixed(2)} MiB; ` +
      `the rest is fixed overhead: Node + tfjs + data on the main thread (≈ the plain loop's ${plain.maxRssMiB.toFixed(0)} MiB) and each worker's V8 isolate + tfjs wasm heap (≈ ${((two.maxRssMiB - one.maxRssMiB)).toFixed(0)} MiB per extra thread)\n`,
  );
}

await main();
