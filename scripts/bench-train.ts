// npm run bench:train [-- --config config/char-lm.json --seconds 5 --repeat 3 --runs st:1:1,st:2:2,st:2:1,tfjs:2,plain,torch]
// Training throughput of a built-in model, each way of running it in its own child process (so its peak RSS
// is its own), the runs interleaved and the best kept (the machine may be shared):
//   st:T:R     shardtrain's engine on T threads with R replicas (R < T: teams of T/R threads per replica)
//   tfjs:T     the tfjs engine (one TensorFlow.js replica per thread), T threads
//   plain      a plain single-thread tfjs loop (the model's createModel/loss, tf.train.adam)
//   torch      PyTorch on the same model: scripts/torch/torch_charlm_bench.py (char-lm), or the exported GPT
//              trained by scripts/torch/gpt_sotu.py (same initial values and batches), at 1 and 2 threads
//   fixed      the fixed cost of a Trainer step: a char-lm with one unit everywhere, at 1 and 2 threads
// Prints a table (samples/s or tokens/s, ms per step, peak RSS, bytes per parameter) and the ratios the
// engine issue names.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Trainer, type TrainConfig } from '../src/index.js';
import { loadConfigFile } from '../src/api/train.js';
import { DataOrder, gatherBatch } from '../src/train/data-order.js';
import { checkDataSet, loadModelModule, modelModuleUrl, tokensPerExample } from '../src/models/model-module.js';
import { initTf, tf, tfl } from '../src/tfjs/tf.js';

interface Args {
  config: string;
  seconds: number;
  repeat: number;
  runs: string[];
  /** Minimum timed steps (large models: a few steps take longer than `seconds`). */
  minSteps: number;
  one?: string;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

function parseArgs(argv: string[]): Args {
  const args: Args = { config: 'config/char-lm.json', seconds: 5, repeat: 3, runs: ['st:1:1', 'st:2:2', 'st:2:1', 'tfjs:2', 'plain', 'torch', 'fixed'], minSteps: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i].replace(/^--/, ''), argv[i + 1]];
    if (key === 'config' || key === 'one') args[key] = value;
    else if (key === 'seconds' || key === 'repeat') args[key] = Number(value);
    else if (key === 'min-steps') args.minSteps = Number(value);
    else if (key === 'runs') args.runs = value.split(',');
    else throw new Error(`bench-train: unknown option --${key} (known: --config, --seconds, --repeat, --min-steps, --runs)`);
  }
  return args;
}

interface Result {
  readonly what: string;
  /** Examples per second (tokens per second for sequence models: rate × tokensPerExample). */
  readonly examplesPerSec: number;
  readonly msPerStep: number;
  readonly maxRssBytes: number;
  readonly params: number;
  readonly tokensPerExample: number | null;
}

async function timeLoop(seconds: number, minSteps: number, warmup: number, step: () => Promise<void>): Promise<{ steps: number; elapsed: number }> {
  for (let i = 0; i < warmup; i++) await step(); // threads, wasm, first allocations, programs
  const t0 = performance.now();
  let steps = 0;
  while (steps < minSteps || performance.now() - t0 < seconds * 1000) {
    await step();
    steps++;
  }
  return { steps, elapsed: (performance.now() - t0) / 1000 };
}

function warmupFor(config: TrainConfig): number {
  return config.model.module === 'gpt' ? 1 : 20;
}

async function benchTrainer(config: TrainConfig, kind: string, a: Args): Promise<Result> {
  const [engine, t, r] = kind.split(':');
  const threads = Number(t);
  const replicas = engine === 'st' ? Number(r) : threads;
  const trainer = await Trainer.create({ config: { ...config, engine: engine === 'st' ? 'shardtrain' : 'tfjs', replicas, steps: 1_000_000 }, threads });
  try {
    const { steps, elapsed } = await timeLoop(a.seconds, a.minSteps, warmupFor(config), async () => void (await trainer.step()));
    return {
      what: engine === 'st' ? `shardtrain engine, ${threads} thread${threads > 1 ? 's' : ''}, ${replicas} replica${replicas > 1 ? 's' : ''}` : `tfjs engine, ${threads} thread${threads > 1 ? 's' : ''}`,
      examplesPerSec: (steps * config.batchSize) / elapsed,
      msPerStep: (1000 * elapsed) / steps,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      params: trainer.optimizer.layout.totalSize,
      tokensPerExample: trainer.tokensPerExample,
    };
  } finally {
    await trainer.close();
  }
}

async function benchPlainTfjs(config: TrainConfig, a: Args): Promise<Result> {
  await initTf(config.backend);
  const mod = await loadModelModule(modelModuleUrl(config.model.module));
  const model = mod.createModel({ tf, tfl, options: config.model.options, seed: config.seed });
  const data = await mod.loadData({ options: config.model.options, seed: config.seed });
  const n = config.batchSize;
  const order = new DataOrder(checkDataSet(data, config.model.module).train, n, config.seed);
  const adam = tf.train.adam(config.optimizer.lr, config.optimizer.betas[0], config.optimizer.betas[1], config.optimizer.eps);
  let t = 0;
  const step = async (): Promise<void> => {
    const b = gatherBatch(data.train, order.slice(t++, 0, n));
    tf.tidy(() => {
      const xt = tf.tensor(b.x, b.xShape as number[], 'int32');
      const yt = tf.tensor(b.y, b.yShape as number[], 'int32');
      adam.minimize(() => mod.loss({ tf, model, x: xt, y: yt }), true)?.dataSync();
    });
  };
  const { steps, elapsed } = await timeLoop(a.seconds, a.minSteps, warmupFor(config), step);
  return { what: `plain tfjs loop, 1 thread (tf.train.adam, ${tf.getBackend()})`, examplesPerSec: (steps * n) / elapsed, msPerStep: (1000 * elapsed) / steps, maxRssBytes: process.resourceUsage().maxRSS * 1024, params: model.countParams(), tokensPerExample: tokensPerExample(data.train) };
}

/** The fixed cost of a step: a model with one unit everywhere (no arithmetic to speak of). */
async function benchFixed(threads: number): Promise<Result> {
  const config = { model: { module: 'char-lm', options: { contextLength: 1, embedding: 1, hidden: [1] } }, steps: 1_000_000, batchSize: 2 * threads, seed: 1, optimizer: { lr: 0.001 } };
  const trainer = await Trainer.create({ config, threads });
  try {
    const { steps, elapsed } = await timeLoop(2, 1000, 200, async () => void (await trainer.step()));
    return { what: `fixed cost of a step (a char-lm of one unit), ${threads} thread${threads > 1 ? 's' : ''}`, examplesPerSec: (steps * config.batchSize) / elapsed, msPerStep: (1000 * elapsed) / steps, maxRssBytes: process.resourceUsage().maxRSS * 1024, params: trainer.optimizer.layout.totalSize, tokensPerExample: null };
  } finally {
    await trainer.close();
  }
}

/** PyTorch's best settings on the same work, or [] when /usr/bin/python3 has no torch. */
function benchTorch(config: TrainConfig, configPath: string, a: Args): Result[] {
  if (spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return [];
  if (config.model.module === 'char-lm') {
    const o = config.model.options as { contextLength: number; embedding: number; hidden: number[] };
    const script = spawnSync('/usr/bin/python3', [join(root, 'scripts/torch/torch_charlm_bench.py'), String(o.contextLength), String(o.embedding), o.hidden.join(','), String(config.batchSize), String(a.seconds)], { encoding: 'utf8' });
    return [...script.stdout.matchAll(/^torch (\S+), (\d+) params, batch \d+, threads (\d+): (\d+) samples\/s$/gm)].map((m) => ({
      what: `PyTorch ${m[1]} (OpenBLAS), ${m[3]} intra-op thread${m[3] === '1' ? '' : 's'}`,
      examplesPerSec: Number(m[4]),
      msPerStep: (1000 * config.batchSize) / Number(m[4]),
      maxRssBytes: Number.NaN,
      params: Number(m[2]),
      tokensPerExample: null,
    }));
  }
  // The GPT: the same initial values and batches, exported, then trained by gpt_sotu.py for a few steps.
  const dir = mkdtempSync(join(tmpdir(), 'bench-train-gpt-'));
  try {
    const steps = Math.max(a.minSteps, 3) + 1;
    const exp = spawnSync(process.execPath, [join(root, 'dist/scripts/gpt-export.js'), '--config', configPath, '--out', dir, '--steps', String(steps)], { encoding: 'utf8' });
    if (exp.status !== 0) throw new Error(`gpt-export failed: ${exp.stderr}`);
    return [1, 2].flatMap((threads) => {
      const run = spawnSync('/usr/bin/python3', [join(root, 'scripts/torch/gpt_sotu.py'), dir, '--steps', String(steps), '--threads', String(threads), '--eval-every', '1000000'], { encoding: 'utf8' });
      const m = /([\d.]+) tokens\/s/.exec(run.stdout);
      if (run.status !== 0 || !m) return [];
      const T = (config.model.options as { contextLength: number }).contextLength;
      const perSec = Number(m[1]) / T;
      return [{ what: `PyTorch (OpenBLAS), ${threads} intra-op thread${threads === 1 ? '' : 's'} (scripts/torch/gpt_sotu.py)`, examplesPerSec: perSec, msPerStep: (1000 * config.batchSize) / perSec, maxRssBytes: Number.NaN, params: Number.NaN, tokensPerExample: T }];
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runOne(config: TrainConfig, kind: string, a: Args): Promise<Result> {
  if (kind === 'plain') return benchPlainTfjs(config, a);
  if (kind.startsWith('fixed:')) return benchFixed(Number(kind.slice(6)));
  return benchTrainer(config, kind, a);
}

const rate = (r: Result) => (r.tokensPerExample === null ? r.examplesPerSec : r.examplesPerSec * r.tokensPerExample);

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const config = loadConfigFile(a.config);
  if (a.one !== undefined) {
    process.stdout.write(`${JSON.stringify(await runOne(config, a.one, a))}\n`);
    return;
  }
  const kinds = a.runs.flatMap((k) => (k === 'fixed' ? ['fixed:1', 'fixed:2'] : k === 'torch' ? [] : [k]));
  const runs: Result[][] = kinds.map(() => []);
  const torch: Result[][] = [];
  const load0 = loadavg()[0];
  for (let rep = 0; rep < a.repeat; rep++) {
    kinds.forEach((one, k) => {
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2), '--one', one], { encoding: 'utf8', maxBuffer: 1 << 26 });
      if (child.status !== 0) throw new Error(`bench child (${one}) failed: ${child.stderr}`);
      runs[k].push(JSON.parse(child.stdout.trim().split('\n').pop()!) as Result);
    });
    if (a.runs.includes('torch')) benchTorch(config, a.config, a).forEach((r, i) => (torch[i] ??= []).push(r));
  }
  const best = (rs: Result[]) => rs.reduce((b, r) => (rate(r) > rate(b) ? r : b));
  const all = [...runs, ...torch];
  const results = all.map(best);
  const unit = results.find((r) => !r.what.startsWith('fixed'))?.tokensPerExample == null ? 'samples/s' : 'tokens/s';
  const params = results.find((r) => Number.isFinite(r.params) && !r.what.startsWith('fixed'))?.params ?? Number.NaN;
  process.stdout.write(
    `config ${a.config}: batch ${config.batchSize}${config.accumulateSteps > 1 ? ` (${config.accumulateSteps} micro-batches per replica)` : ''}, ${params} params; ` +
      `≥ ${a.seconds} s and ≥ ${a.minSteps} steps per run after warm-up, best of ${a.repeat} interleaved runs; ${cpus().length} cores, load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)}\n\n`,
  );
  process.stdout.write(`| run | ${unit}, best (all runs) | ms/step | peak RSS | bytes/param |\n|---|---:|---:|---:|---:|\n`);
  results.forEach((r, k) => {
    const rss = Number.isFinite(r.maxRssBytes) ? `${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB` : '—';
    const bpp = Number.isFinite(r.maxRssBytes) && !r.what.startsWith('fixed') ? (r.maxRssBytes / params).toFixed(1) : '—';
    process.stdout.write(`| ${r.what} | ${rate(r).toFixed(0)} (${all[k].map((x) => rate(x).toFixed(0)).join(', ')}) | ${r.msPerStep.toFixed(r.msPerStep < 1 ? 3 : 1)} | ${rss} | ${bpp} |\n`);
  });
  const find = (prefix: string) => results.find((r) => r.what.startsWith(prefix));
  const one = find('shardtrain engine, 1 thread, 1 replica');
  const two = [find('shardtrain engine, 2 threads, 2 replicas'), find('shardtrain engine, 2 threads, 1 replica')].filter((r): r is Result => r !== undefined);
  const plain = find('plain tfjs');
  const torchBest = torch.length > 0 ? best(torch.map(best)) : undefined;
  process.stdout.write('\n');
  for (const t of two) {
    if (one) process.stdout.write(`${t.what} / 1 thread: ${(rate(t) / rate(one)).toFixed(2)}×\n`);
    if (plain) process.stdout.write(`${t.what} / the plain tfjs loop: ${(rate(t) / rate(plain)).toFixed(2)}×\n`);
    if (torchBest) process.stdout.write(`${t.what} / PyTorch's best (${torchBest.what}): ${(rate(t) / rate(torchBest)).toFixed(2)}×\n`);
  }
}

await main();
