// npm run profile:step [-- --config config/char-lm.json --replicas 2 --steps 30 --kernels tfjs|ours]
// Where one replica's training step spends its time, kernel by kernel, on the tfjs wasm backend. It does what
// src/train/replica.ts does per step (params → tfjs variables, loss and gradients on micro-batch
// batchSize / replicas, gradients copied out with dataSync) and reports:
//   - the wall time of each phase (best step: the machine is shared) and the process's CPU time per step
//     (less sensitive to other processes than wall time, on this single-threaded script),
//   - tf.profile's per-kernel times summed by kernel name (and by shape for the matmuls), median over steps.
// `--kernels tfjs` leaves tfjs's own kernels in place (the "before" column); the default registers ours.

import { loadavg } from 'node:os';
import { loadConfigFile } from '../src/api/train.js';
import { DataOrder } from '../src/train/data-order.js';
import { checkDataSet, loadModelModule, modelModuleUrl } from '../src/models/model-module.js';
import { batchTensors } from '../src/train/tfjs-replica.js';
import { initTf, tf, tfl } from '../src/tfjs/tf.js';
import { registerWasmKernels } from '../src/tfjs/register.js';
import type * as TF from '@tensorflow/tfjs-core';

interface Args {
  config: string;
  replicas: number;
  steps: number;
  kernels: 'tfjs' | 'ours';
}

function parseArgs(argv: string[]): Args {
  const args: Args = { config: 'config/char-lm.json', replicas: 2, steps: 30, kernels: 'ours' };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i].replace(/^--/, ''), argv[i + 1]];
    if (key === 'config') args.config = value;
    else if (key === 'replicas' || key === 'steps') args[key] = Number(value);
    else if (key === 'kernels' && (value === 'tfjs' || value === 'ours')) args.kernels = value;
    else throw new Error(`profile-step: bad option --${key} ${value} (known: --config, --replicas, --steps, --kernels tfjs|ours)`);
  }
  return args;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = loadConfigFile(args.config);
  const backend = await initTf(config.backend);
  if (args.kernels === 'tfjs') registerWasmKernels(tf, { use: 'tfjs' });
  const mod = await loadModelModule(modelModuleUrl(config.model.module));
  const model = mod.createModel({ tf, tfl, options: config.model.options, seed: config.seed });
  const data = await mod.loadData({ options: config.model.options, seed: config.seed });
  const variables = model.trainableWeights.map((w) => w.read() as TF.Variable);
  const hostParams = variables.map((v) => v.dataSync().slice() as Float32Array);
  const hostGrads = variables.map((v) => new Float32Array(v.size));
  const n = config.batchSize / args.replicas;
  const order = new DataOrder(checkDataSet(data, config.model.module).train, config.batchSize, config.seed);

  const phases = { load: [] as number[], grad: [] as number[], copyOut: [] as number[], total: [] as number[] };
  const byKernel = new Map<string, number[]>();
  const step = (t: number): { load: number; grad: number; copyOut: number } => {
    const t0 = performance.now();
    variables.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(hostParams[i], v.shape, 'float32'))));
    const t1 = performance.now();
    const idx = order.slice(t, 0, n);
    let t2 = 0;
    tf.tidy(() => {
      const { x, y } = batchTensors(data.train, idx);
      const { value, grads } = tf.variableGrads(() => mod.loss({ tf, model, x, y }), variables);
      value.dataSync();
      t2 = performance.now();
      variables.forEach((v, i) => hostGrads[i].set(grads[v.name].dataSync() as Float32Array));
    });
    const t3 = performance.now();
    return { load: t1 - t0, grad: t2 - t1, copyOut: t3 - t2 };
  };
  for (let t = 0; t < 10; t++) step(t); // warm-up: first allocations, kernel set-up
  const cpu0 = process.cpuUsage();
  for (let t = 0; t < args.steps; t++) {
    const t0 = performance.now();
    const p = step(t);
    phases.total.push(performance.now() - t0);
    phases.load.push(p.load);
    phases.grad.push(p.grad);
    phases.copyOut.push(p.copyOut);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerStep = (cpu.user + cpu.system) / 1000 / args.steps;
  // Profiled steps apart from the timed ones: tf.profile adds bookkeeping per kernel.
  for (let t = 0; t < args.steps; t++) {
    const info = await tf.profile(() => void step(t));
    const sums = new Map<string, number>();
    // customGrad wrappers (named …__op by tfjs's ops, 'unnamed scope' when a model's customGrad has no name):
    // their kernels are listed too.
    for (const k of info.kernels.filter((k) => !k.name.endsWith('__op') && k.name !== 'unnamed scope')) {
      const shapes = k.inputShapes.map((s) => `[${s}]`).join('·');
      const key = /MatMul/.test(k.name) || process.env.PROFILE_SHAPES ? `${k.name} ${shapes}` : k.name;
      sums.set(key, (sums.get(key) ?? 0) + (k.kernelTimeMs as number));
      sums.set(`#${key}`, (sums.get(`#${key}`) ?? 0) + 1);
    }
    for (const [key, ms] of sums) byKernel.set(key, [...(byKernel.get(key) ?? []), ms]);
  }
  const rows = [...byKernel].filter(([k]) => !k.startsWith('#')).map(([k, ms]) => ({ k, ms: median(ms), count: median(byKernel.get(`#${k}`)!) }));
  rows.sort((a, b) => b.ms - a.ms);
  const kernelSum = rows.reduce((s, r) => s + r.ms, 0);
  const best = (xs: number[]): string => Math.min(...xs).toFixed(2);
  const total = Math.min(...phases.total);
  process.stdout.write(
    `${args.config}: micro-batch ${n} (batch ${config.batchSize} / ${args.replicas} replicas), backend ${backend}, kernels ${args.kernels}; ` +
      `best of ${args.steps} steps; load average ${loadavg()[0].toFixed(2)}\n\n` +
      `| phase | best ms |\n|---|---:|\n| params → variables (assign) | ${best(phases.load)} |\n| forward + backward (variableGrads) | ${best(phases.grad)} |\n` +
      `| gradients → host (dataSync) | ${best(phases.copyOut)} |\n| step | ${total.toFixed(2)} |\n` +
      `| step, median wall time | ${median(phases.total).toFixed(2)} |\n| step, CPU time of the process (mean; GC threads included) | ${cpuMsPerStep.toFixed(2)} |\n\n` +
      `| kernel (inputs) | calls | ms (median) | share of kernel time |\n|---|---:|---:|---:|\n`,
  );
  for (const r of rows) process.stdout.write(`| ${r.k} | ${r.count} | ${r.ms.toFixed(3)} | ${((100 * r.ms) / kernelSum).toFixed(1)} % |\n`);
  process.stdout.write(`| **sum of kernels** | | ${kernelSum.toFixed(2)} | |\n`);
}

await main();
