// npm run bench:train [-- --config config/char-lm.json --seconds 6 --batch N --gemm-seconds 0.3 --torch-seconds 2]
// samples/s of the default model: shardtrain at 1 and 2 threads (one replica per thread) vs a plain
// single-thread tfjs loop (same model, same batch, same backend, tfjs Adam), shardtrain at 2 threads on
// tfjs's own wasm kernels (SHARDTRAIN_WASM_KERNELS=tfjs), and PyTorch on the same model when /usr/bin/python3
// has torch (scripts/torch/torch_charlm_bench.py). Each configuration runs in its own child process so that
// its peak RSS (process.resourceUsage().maxRSS) is its own; the runs are interleaved and the best is kept.
// Then the GEMM table (scripts/bench-gemm.ts): GFLOPS per shape, ours vs tfjs's own vs PyTorch, 1 and 2
// threads, for two reference shapes and every matmul of this config's training step.

import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Trainer, type TrainConfig } from '../src/index.js';
import { loadConfigFile } from '../src/api/train.js';
import { DataOrder, gatherBatch } from '../src/train/data-order.js';
import { checkDataSet, loadModelModule, modelModuleUrl } from '../src/models/model-module.js';
import { initTf, tf, tfl } from '../src/tfjs/tf.js';
import { formatGemmTable, gemmTable, stepShapes, type GemmShape } from './bench-gemm.js';

interface Args {
  config: string;
  seconds: number;
  /** Runs of each configuration, interleaved; the best is reported (the machine may be shared). */
  repeat: number;
  batch?: number;
  one?: string;
  /** Seconds per GEMM measurement (0: no GEMM table). */
  gemmSeconds: number;
  /** Seconds per timed window of the PyTorch script (0: no PyTorch run). */
  torchSeconds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { config: 'config/char-lm.json', seconds: 5, repeat: 3, gemmSeconds: 0.3, torchSeconds: 2 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i].replace(/^--/, ''), argv[i + 1]];
    if (key === 'config' || key === 'one') args[key] = value;
    else if (key === 'seconds' || key === 'batch' || key === 'repeat') args[key] = Number(value);
    else if (key === 'gemm-seconds') args.gemmSeconds = Number(value);
    else if (key === 'torch-seconds') args.torchSeconds = Number(value);
    else throw new Error(`bench-train: unknown option --${key} (known: --config, --seconds, --repeat, --batch, --gemm-seconds, --torch-seconds)`);
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

/** PyTorch on the same char-lm (1 and 2 intra-op threads), or null when /usr/bin/python3 has no torch. */
function benchTorch(config: TrainConfig, seconds: number): Result[] | null {
  const o = config.model.options as { contextLength: number; embedding: number; hidden: number[] };
  const script = fileURLToPath(new URL('../../scripts/torch/torch_charlm_bench.py', import.meta.url));
  const run = spawnSync('/usr/bin/python3', [script, String(o.contextLength), String(o.embedding), o.hidden.join(','), String(config.batchSize), String(seconds)], { encoding: 'utf8' });
  if (run.status !== 0) return null;
  return [...run.stdout.matchAll(/^torch (\S+), (\d+) params, batch \d+, threads (\d+): (\d+) samples\/s$/gm)].map((m) => ({
    what: `PyTorch ${m[1]} (OpenBLAS), ${m[3]} intra-op thread${m[3] === '1' ? '' : 's'}`,
    samplesPerSec: Number(m[4]),
    msPerStep: (1000 * config.batchSize) / Number(m[4]),
    maxRssMiB: NaN,
    params: Number(m[2]),
  }));
}

/** The GEMM shapes to measure: two reference shapes (with the transposes of a backward pass) and this config's step. */
function gemmShapes(config: TrainConfig, vocab: number): GemmShape[] {
  const ref = (m: number, k: number, n: number, transposeA: boolean, transposeB: boolean, tfjs = true): GemmShape => ({ label: 'reference shape', m, k, n, transposeA, transposeB, tfjs });
  const shapes = [ref(1024, 256, 256, false, false), ref(1024, 256, 256, true, false), ref(1024, 256, 256, false, true), ref(1024, 1024, 1024, false, false), ref(1024, 1024, 1024, true, false, false)];
  if (config.model.module !== 'char-lm') return shapes;
  const o = config.model.options as { contextLength: number; embedding: number; hidden: number[] };
  const replicas = 2;
  return [...shapes, ...stepShapes(config.name ?? 'char-lm', config.batchSize / replicas, [o.contextLength * o.embedding, ...o.hidden, vocab])];
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
  const kinds = ['plain', '1', '2', '2-tfjs'];
  const runs: Result[][] = kinds.map(() => []);
  const torchRuns: Result[][] = [[], []];
  const load0 = loadavg()[0];
  const loads: number[] = [];
  for (let rep = 0; rep < args.repeat; rep++) {
    kinds.forEach((one, k) => {
      const tfjsKernels = one.endsWith('-tfjs');
      const env = { ...process.env, ...(tfjsKernels ? { SHARDTRAIN_WASM_KERNELS: 'tfjs' } : {}) };
      const child = spawnSync(process.execPath, [self, ...process.argv.slice(2), '--one', one.replace('-tfjs', '')], { encoding: 'utf8', env });
      if (child.status !== 0) throw new Error(`bench child (${one}) failed: ${child.stderr}`);
      const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as Result;
      runs[k].push(tfjsKernels ? { ...result, what: `${result.what}, tfjs's own wasm kernels` } : result);
      loads.push(loadavg()[0]);
    });
    if (args.torchSeconds > 0 && config.model.module === 'char-lm') benchTorch(config, args.torchSeconds)?.forEach((r, t) => torchRuns[t].push(r));
  }
  const best = (rs: Result[]) => rs.reduce((b, r) => (r.samplesPerSec > b.samplesPerSec ? r : b));
  const results = runs.map(best);
  const [plain, one, two, twoTfjs] = results;
  process.stdout.write(
    `config ${args.config}: batch ${config.batchSize}, ${plain.params} params, backend ${config.backend}; ${args.seconds} s per run after 20 warm-up steps, ` +
      `best of ${args.repeat} interleaved runs; ${cpus().length} cores, load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)}\n\n`,
  );
  process.stdout.write(`load average during the runs: ${loads.map((l) => l.toFixed(1)).join(', ')}\n\n`);
  process.stdout.write('| run | samples/s, best (all runs) | ms/step | peak RSS (MiB) |\n|---|---:|---:|---:|\n');
  const torchBest = torchRuns.filter((rs) => rs.length > 0).map(best);
  [...results, ...torchBest].forEach((r, k) => {
    const all = [...runs, ...torchRuns.filter((rs) => rs.length > 0)][k].map((x) => x.samplesPerSec.toFixed(0)).join(', ');
    process.stdout.write(`| ${r.what} | ${r.samplesPerSec.toFixed(0)} (${all}) | ${r.msPerStep.toFixed(2)} | ${Number.isNaN(r.maxRssMiB) ? '—' : r.maxRssMiB.toFixed(0)} |\n`);
  });
  process.stdout.write(`\n2 threads / 1 thread: ${(two.samplesPerSec / one.samplesPerSec).toFixed(2)}×;  2 threads / plain tfjs: ${(two.samplesPerSec / plain.samplesPerSec).toFixed(2)}× (targets ≥ 1.7×)\n`);
  process.stdout.write(
    `our wasm kernels vs tfjs's own, 2 threads: ${(two.samplesPerSec / twoTfjs.samplesPerSec).toFixed(2)}× the samples/s, peak RSS ${two.maxRssMiB.toFixed(0)} vs ${twoTfjs.maxRssMiB.toFixed(0)} MiB ` +
      `(${(100 * (two.maxRssMiB / twoTfjs.maxRssMiB - 1)).toFixed(1)} %, target ≤ +10 %)\n`,
  );
  if (torchBest.length > 0) {
    const torch = best(torchBest);
    process.stdout.write(`shardtrain 2 threads / PyTorch's best (${torch.what}): ${(two.samplesPerSec / torch.samplesPerSec).toFixed(3)}× (on tfjs's own kernels: ${(twoTfjs.samplesPerSec / torch.samplesPerSec).toFixed(3)}×)\n`);
  }
  const stateBytes = (16 + 4 * 2) * two.params;
  process.stdout.write(
    `memory: shared states (16 + 4·R bytes/param, R = 2) = ${(stateBytes / 2 ** 20).toFixed(2)} MiB; ` +
      `the rest is fixed overhead: Node + tfjs + data on the main thread (≈ the plain loop's ${plain.maxRssMiB.toFixed(0)} MiB) and each worker's V8 isolate + tfjs wasm heap (≈ ${((two.maxRssMiB - one.maxRssMiB)).toFixed(0)} MiB per extra thread)\n`,
  );
  if (args.gemmSeconds > 0) {
    const { vocabularySize } = await import('../src/models/char-lm.js');
    const loadBefore = loadavg()[0];
    const rows = await gemmTable(gemmShapes(config, vocabularySize()), args.gemmSeconds, args.repeat);
    process.stdout.write(
      `\nGEMM, GFLOPS (tf.matMul on the wasm backend, float32): best of ${args.repeat} interleaved ${args.gemmSeconds} s runs; ` +
        `"per thread of 2": two worker threads run the same matMul at once; load average ${loadBefore.toFixed(1)} → ${loadavg()[0].toFixed(1)}\n\n`,
    );
    process.stdout.write(formatGemmTable(rows));
  }
}

await main();
