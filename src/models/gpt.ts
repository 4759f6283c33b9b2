// The built-in GPT (config model.module = "gpt"): a decoder-only transformer over a token stream, the State
// of the Union addresses as characters (sotu.ts) or a prepared directory of char or GPT-2 ids (gpt-data.ts).
// Token + learned position embeddings → `layers` pre-LayerNorm blocks (causal multi-head self-attention with
// one fused QKV projection; a GELU (tanh) MLP of mlpRatio × width) → final LayerNorm → logits (the head
// optionally tied to the token embedding). LayerNorm ε is 1e-5 and GELU the tanh form: GPT-2's, so a GPT-2
// checkpoint (options.init) computes GPT-2's logits. No dropout: runs stay bitwise reproducible. The options
// are in gpt-options.ts, the math in gpt-layers.ts (tfjs) and gpt-engine.ts (shardtrain's engine), sampling
// in gpt-sample.ts.
//
// Tensors (C = embedding, V = vocabulary, H = mlpRatio·C):
//   wte/embeddings [V, C]   wpe/embeddings [contextLength, C]
//   block_i/layer_norm_1/{gamma,beta} [C]   block_i/attn/qkv/{kernel [C, 3C], bias}   block_i/attn/proj/{kernel [C, C], bias}
//   block_i/layer_norm_2/{gamma,beta} [C]   block_i/mlp/fc/{kernel [C, H], bias}    block_i/mlp/proj/{kernel [H, C], bias}
//   layer_norm_f/{gamma,beta} [C]           lm_head/kernel [C, V] (untied only)
// With bias: false (nanoGPT's bias-free GPT) there is no bias and no beta. Kernels are [in, out] (Keras, and
// GPT-2's Conv1D); torch's Linear.weight is the transpose.

import { mixSeed, mulberry32 } from './random.js';
import type { InitSource, LayersModel, SampleContext, Tf, Tfl, TorchMapping } from './model-module.js';
import type { TensorSpec } from '../memory/layout.js';
import type * as TF from '@tensorflow/tfjs-core';
import { gptLayers } from './gpt-layers.js';
import { gptVocabSize, type GptMeta } from './gpt-data.js';
import { resolveGptOptions, type GptOptions } from './gpt-options.js';
import { sampleTokens, tfjsLastLogits } from './gpt-sample.js';
import { tokenizerFor } from './tokenizer.js';

export { gptDefaults, kSotuData, resolveGptOptions, type GptOptions } from './gpt-options.js';
export { loadData, loadMeta, type GptMeta, type PreparedSplit, type SotuSplit } from './gpt-data.js';

/** Standard deviation of GPT-2's initialisation for a tensor, or a constant (LayerNorm 1/0, biases 0). */
export function initRule(name: string, layers: number): { std: number } | { constant: number } {
  if (/layer_norm_[^/]*\/gamma$/.test(name)) return { constant: 1 };
  if (/\/(beta|bias)$/.test(name)) return { constant: 0 };
  // GPT-2: residual projections (the ones added into the stream) are scaled by 1/√(2·layers), the stream
  // receiving two of them per block.
  if (/\/(attn|mlp)\/proj\/kernel$/.test(name)) return { std: 0.02 / Math.sqrt(2 * layers) };
  return { std: 0.02 };
}

/**
 * Normal(0, std) values from a seeded mulberry32 stream (Box–Muller in float64, rounded to float32): the
 * same bits on every thread and every run. Each tensor has its own stream, mixSeed(seed, tensor index).
 */
export function normalValues(size: number, std: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const t = 2 * Math.PI * rand();
    out[i] = std * r * Math.cos(t);
    if (i + 1 < size) out[i + 1] = std * r * Math.sin(t);
  }
  return out;
}

/** The GPT's tensors in order (the order of the tfjs model's trainable weights, and of checkpoints). */
export function gptTensors(o: GptOptions, vocab: number): TensorSpec[] {
  const C = o.embedding;
  const H = o.mlpRatio * C;
  const out: TensorSpec[] = [];
  const add = (name: string, shape: number[]) => out.push({ name, shape, size: shape.reduce((a, d) => a * d, 1) });
  // A bias, or a LayerNorm's beta: absent from the bias-free GPT.
  const bias = (name: string, shape: number[]) => {
    if (o.bias) add(name, shape);
  };
  add('wte/embeddings', [vocab, C]);
  add('wpe/embeddings', [o.contextLength, C]);
  for (let i = 0; i < o.layers; i++) {
    const b = `block_${i}`;
    add(`${b}/layer_norm_1/gamma`, [C]); bias(`${b}/layer_norm_1/beta`, [C]);
    add(`${b}/attn/qkv/kernel`, [C, 3 * C]); bias(`${b}/attn/qkv/bias`, [3 * C]);
    add(`${b}/attn/proj/kernel`, [C, C]); bias(`${b}/attn/proj/bias`, [C]);
    add(`${b}/layer_norm_2/gamma`, [C]); bias(`${b}/layer_norm_2/beta`, [C]);
    add(`${b}/mlp/fc/kernel`, [C, H]); bias(`${b}/mlp/fc/bias`, [H]);
    add(`${b}/mlp/proj/kernel`, [H, C]); bias(`${b}/mlp/proj/bias`, [C]);
  }
  add('layer_norm_f/gamma', [C]); bias('layer_norm_f/beta', [C]);
  if (!o.tieEmbeddings) add('lm_head/kernel', [C, vocab]);
  return out;
}

/** GPT-2's initial values for `tensors` (gptTensors), tensor i from its own stream mixSeed(seed, i). */
export function gptInitialValues(tensors: readonly TensorSpec[], layers: number, seed: number): Float32Array[] {
  return tensors.map((t, i) => {
    const rule = initRule(t.name, layers);
    return 'constant' in rule ? new Float32Array(t.size).fill(rule.constant) : normalValues(t.size, rule.std, mixSeed(seed, i));
  });
}

export function createModel({ tf, tfl, options, seed }: { tf: Tf; tfl: Tfl; options: Readonly<Record<string, unknown>>; seed: number }): LayersModel {
  const o = resolveGptOptions(options);
  // gpt-layers.ts's blocks always have their biases: the bias-free GPT is built on the shardtrain engine only.
  if (!o.bias) throw new RangeError('gpt: model.options.bias false (nanoGPT\'s bias-free GPT) runs on the shardtrain engine; the tfjs engine\'s GPT has biases (leave "engine" unset)');
  const vocab = gptVocabSize(o, seed);
  const g = gptLayers(tf, tfl);
  const wte = tfl.layers.embedding({ name: 'wte', inputDim: vocab, outputDim: o.embedding, embeddingsInitializer: 'zeros', batchInputShape: [null, null] });
  const layers = [wte, g.positions('wpe', o.contextLength)];
  for (let i = 0; i < o.layers; i++) layers.push(g.block(`block_${i}`, o.heads, o.mlpRatio));
  layers.push(g.layerNorm('layer_norm_f'), g.head('lm_head', vocab, o.tieEmbeddings ? wte : null));
  const model = tfl.sequential({ name: 'gpt', layers });
  const specs = gptTensors(o, vocab);
  const values = gptInitialValues(specs, o.layers, seed);
  model.trainableWeights.forEach((w, i) => {
    // Both engines build the same tensors: a layer declared out of order would be a silent mix-up.
    if (w.originalName !== specs[i]?.name) throw new Error(`gpt: tfjs weight ${i} is ${w.originalName}, expected ${specs[i]?.name}`);
    tf.tidy(() => (w.read() as TF.Variable).assign(tf.tensor(values[i], w.shape as number[], 'float32')));
  });
  return model;
}

/** Mean cross-entropy (nats per character) of the next character at every position of every window. */
export function loss({ tf, model, x, y }: { tf: Tf; model: LayersModel; x: TF.Tensor; y: TF.Tensor }): TF.Scalar {
  const logits = model.apply(x) as TF.Tensor3D;
  const [B, L, V] = logits.shape;
  const labels = tf.oneHot(tf.reshape(y, [B * L]) as TF.Tensor1D, V);
  return tf.losses.softmaxCrossEntropy(labels, tf.reshape(logits, [B * L, V])) as TF.Scalar;
}

/** Continuations of `prompt` (default: the start of a document), `tokens` tokens each, in the data's tokenizer. */
export function sample(ctx: SampleContext): string[] {
  const { tokenizer, contextLength } = ctx.meta as GptMeta;
  return sampleTokens({ ...ctx, lastLogits: tfjsLastLogits(ctx.tf, ctx.model), tokenizer: tokenizerFor(tokenizer), contextLength });
}

/** options.init as the trainer reads it: a GPT-2 checkpoint in Hugging Face's layout, or none. */
export function initSource({ options }: { options: Readonly<Record<string, unknown>> }): InitSource | null {
  const { init } = resolveGptOptions(options);
  return init === null ? null : { format: 'gpt2', path: init };
}

/**
 * The torch equivalent (scripts/torch/shardtrain_torch.py, GPT), with nanoGPT's names: wte, wpe,
 * blocks.i.{ln_1, attn.qkv, attn.proj, ln_2, mlp.fc, mlp.proj}, ln_f, lm_head. Kernels [in, out] become
 * Linear weights [out, in] (the fused QKV's column blocks q | k | v become row blocks); LayerNorm gamma/beta
 * are weight/bias; embeddings stay as they are.
 */
export function torch({ options, tensors }: { options: Readonly<Record<string, unknown>>; tensors: readonly TensorSpec[] }): TorchMapping {
  const o = resolveGptOptions(options);
  const rename = (name: string): { torchName: string; transpose: boolean } => {
    const emb = /^(wte|wpe)\/embeddings$/.exec(name);
    if (emb) return { torchName: `${emb[1]}.weight`, transpose: false };
    const m = /^(?:block_(\d+)\/)?(layer_norm_1|layer_norm_2|layer_norm_f|attn\/qkv|attn\/proj|mlp\/fc|mlp\/proj|lm_head)\/(kernel|bias|gamma|beta)$/.exec(name);
    if (!m) throw new RangeError(`gpt: tensor "${name}" has no torch equivalent`);
    const norms: Readonly<Record<string, string>> = { layer_norm_1: 'ln_1', layer_norm_2: 'ln_2', layer_norm_f: 'ln_f' };
    const module = norms[m[2]] ?? m[2].replace('/', '.');
    return { torchName: `${m[1] === undefined ? '' : `blocks.${m[1]}.`}${module}.${m[3] === 'kernel' || m[3] === 'gamma' ? 'weight' : 'bias'}`, transpose: m[3] === 'kernel' };
  };
  const vocab = tensors.find((t) => t.name === 'wte/embeddings')?.shape[0];
  if (vocab === undefined) throw new RangeError('gpt: no wte/embeddings tensor');
  const { contextLength, embedding, heads, layers, mlpRatio, tieEmbeddings, bias } = o;
  return { module: 'GPT', options: { vocab, contextLength, embedding, heads, layers, mlpRatio, tieEmbeddings, bias }, tensors: tensors.map((t) => ({ name: t.name, ...rename(t.name) })) };
}
