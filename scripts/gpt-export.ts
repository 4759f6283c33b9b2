// node dist/scripts/gpt-export.js --config config/gpt-sotu.json --out DIR [--steps N]
// Everything scripts/torch/gpt_sotu.py needs to train the same GPT on the same data as `shardtrain train`
// with that config, so that the comparison differs only in the framework:
//   meta.json            config, vocabulary, shapes, the tensors' names/shapes/offsets in init.f32
//   train_tokens.i32     the training stream (int32 little-endian)
//   eval_tokens.i32      the held-out stream (characters outside the vocabulary already dropped)
//   order.u32            the window offsets of every training step: steps × batchSize, in batch order
//                        (DataOrder, exactly what the replicas take; skipped steps aside)
//   eval_starts.u32      the held-out windows' offsets
//   init.f32             the initial params (createModel for the config's seed), tensor after tensor, in
//                        shardtrain's layout; meta.json gives each one's torch name and whether it transposes

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadConfigFile } from '../src/api/train.js';
import { DataOrder } from '../src/train/data-order.js';
import { isTokenWindows, startModel, windowCount } from '../src/models/model-module.js';
import { torch as gptTorch } from '../src/models/gpt.js';

const program = new Command('gpt-export')
  .requiredOption('--config <file>', 'a gpt config, e.g. config/gpt-sotu.json')
  .requiredOption('--out <dir>', 'output directory')
  .option('--steps <n>', 'steps to export the data order for (default: config.steps)', Number)
  .parse();
const opts = program.opts<{ config: string; out: string; steps?: number }>();

const config = loadConfigFile(opts.config);
const steps = opts.steps ?? config.steps;
// The initial values come from a seeded JS stream: the same on every backend.
const { model, tensors, data, counts } = await startModel({ ...config.model, seed: config.seed, backend: 'cpu' });
if (!isTokenWindows(data.train) || !isTokenWindows(data.eval)) throw new Error(`${opts.config}: not a token-window model`);
const train = data.train;
const held = data.eval;

mkdirSync(opts.out, { recursive: true });
const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
writeFileSync(join(opts.out, 'train_tokens.i32'), bytes(train.tokens));
writeFileSync(join(opts.out, 'eval_tokens.i32'), bytes(held.tokens));
const order = new DataOrder(counts.train, config.batchSize, config.seed);
const offsets = new Uint32Array(steps * config.batchSize);
for (let t = 0; t < steps; t++) order.slice(t, 0, config.batchSize, offsets.subarray(t * config.batchSize, (t + 1) * config.batchSize));
writeFileSync(join(opts.out, 'order.u32'), bytes(offsets));
const stride = held.stride ?? 1;
writeFileSync(join(opts.out, 'eval_starts.u32'), bytes(Uint32Array.from({ length: windowCount(held) }, (_, i) => i * stride)));

// Each tensor with its torch name and layout (gpt.ts torch(): what `shardtrain export --to torch` uses), so
// that the script loads the initial values into scripts/torch/shardtrain_torch.py's GPT.
const mapping = gptTorch({ options: config.model.options, tensors });
let at = 0;
const manifest = tensors.map((t) => {
  const m = mapping.tensors.find((e) => e.name === t.name)!;
  const entry = { name: t.name, shape: t.shape, offset: at, torchName: m.torchName, transpose: m.transpose };
  at += t.size;
  return entry;
});
const init = new Float32Array(at);
tensors.forEach((t, i) => init.set(model.trainableWeights[i].read().dataSync() as Float32Array, manifest[i].offset));
writeFileSync(join(opts.out, 'init.f32'), bytes(init));
writeFileSync(join(opts.out, 'meta.json'), `${JSON.stringify({ config, steps, window: train.window, meta: data.meta, tensors: manifest, torchModel: { module: mapping.module, options: mapping.options }, counts }, null, 1)}\n`);
process.stdout.write(`wrote ${opts.out}: ${train.tokens.length} training / ${held.tokens.length} held-out tokens, ${steps} steps × ${config.batchSize} windows, ${counts.eval} held-out windows, ${at} params\n`);
