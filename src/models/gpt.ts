// The built-in GPT (config model.module = "gpt"): a decoder-only transformer over characters, trained on the
// State of the Union addresses (sotu.ts). Token + learned position embeddings → `layers` pre-LayerNorm blocks
// (causal multi-head self-attention with one fused QKV projection; a GELU MLP of mlpRatio × width) → final
// LayerNorm → logits (the head optionally tied to the token embedding). No dropout: runs stay bitwise
// reproducible. The math is in gpt-layers.ts; sampling in gpt-sample.ts.
//
// Tensors (C = embedding, V = vocabulary, H = mlpRatio·C):
//   wte/embeddings [V, C]   wpe/embeddings [contextLength, C]
//   block_i/layer_norm_1/{gamma,beta} [C]   block_i/attn/qkv/{kernel [C, 3C], bias}   block_i/attn/proj/{kernel [C, C], bias}
//   block_i/layer_norm_2/{gamma,beta} [C]   block_i/mlp/fc/{kernel [C, H], bias}    block_i/mlp/proj/{kernel [H, C], bias}
//   layer_norm_f/{gamma,beta} [C]           lm_head/kernel [C, V] (untied only)
// Kernels are [in, out] (Keras); torch's Linear.weight is the transpose.

import { mixSeed, mulberry32 } from './random.js';
import type { DataSet, LayersModel, SampleContext, Tf, Tfl, TorchMapping } from './model-module.js';
import type { TensorSpec } from '../memory/layout.js';
import type * as TF from '@tensorflow/tfjs-core';
import { gptLayers } from './gpt-layers.js';
import { sampleTokens, tfjsLastLogits } from './gpt-sample.js';
import { encodeDropping, encode, evalStride, sotuCorpus } from './sotu.js';

export interface GptOptions {
  /** Tokens (characters) per training window, and the longest context the model sees. Default 128. */
  contextLength: number;
  /** Width C of the residual stream. Default 128. */
  embedding: number;
  /** Attention heads; must divide embedding. Default 4. */
  heads: number;
  /** Transformer blocks. Default 4. */
  layers: number;
  /** MLP width = mlpRatio × embedding (an integer). Default 4. */
  mlpRatio: number;
  /** The head reuses the token embedding (logits = x·wteᵀ). Default true. */
  tieEmbeddings: boolean;
  /** Share of the addresses held out, whole. Default 0.05 (12 of 233). */
  evalFraction: number;
  /** At most this many held-out windows, non-overlapping and spread evenly over the held-out text. Default 256. */
  evalWindows: number;
}

export const gptDefaults: GptOptions = Object.freeze({
  contextLength: 128,
  embedding: 128,
  heads: 4,
  layers: 4,
  mlpRatio: 4,
  tieEmbeddings: true,
  evalFraction: 0.05,
  evalWindows: 256,
});

export function resolveGptOptions(raw: Readonly<Record<string, unknown>>): GptOptions {
  for (const key of Object.keys(raw)) if (!(key in gptDefaults)) throw new RangeError(`gpt: unknown key model.options.${key} (known: ${Object.keys(gptDefaults).join(', ')})`);
  const o = { ...gptDefaults, ...raw } as GptOptions;
  const got = (x: unknown) => JSON.stringify(x) ?? String(x);
  const posInt = (key: keyof GptOptions) => {
    const x = o[key];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new RangeError(`gpt: model.options.${key} must be a positive integer, got ${got(x)}`);
  };
  (['contextLength', 'embedding', 'heads', 'layers', 'evalWindows'] as const).forEach(posInt);
  if (o.embedding % o.heads !== 0) throw new RangeError(`gpt: model.options.embedding (${o.embedding}) must be divisible by heads (${o.heads})`);
  if (typeof o.mlpRatio !== 'number' || !(o.mlpRatio > 0) || !Number.isInteger(o.mlpRatio * o.embedding)) {
    throw new RangeError(`gpt: model.options.mlpRatio must be a positive number with mlpRatio × embedding an integer, got ${got(o.mlpRatio)}`);
  }
  if (typeof o.tieEmbeddings !== 'boolean') throw new RangeError(`gpt: model.options.tieEmbeddings must be true or false, got ${got(o.tieEmbeddings)}`);
  if (typeof o.evalFraction !== 'number' || !(o.evalFraction > 0 && o.evalFraction < 1)) {
    throw new RangeError(`gpt: model.options.evalFraction must be in (0, 1), got ${got(o.evalFraction)}`);
  }
  return o;
}

export interface GptMeta {
  readonly vocab: readonly string[];
  readonly contextLength: number;
  readonly trainYears: readonly number[];
  readonly evalYears: readonly number[];
  /** Held-out characters left out because the training text never has them. */
  readonly evalDropped: number;
}

export function loadData({ options, seed }: { options: Readonly<Record<string, unknown>>; seed: number }): DataSet {
  const o = resolveGptOptions(options);
  const corpus = sotuCorpus(seed, o.evalFraction);
  const train = encode(corpus.trainText, corpus.vocab, 'the training text');
  const held = encodeDropping(corpus.evalText, corpus.vocab);
  const L = o.contextLength;
  const meta: GptMeta = { vocab: corpus.vocab, contextLength: L, trainYears: corpus.trainYears, evalYears: corpus.evalYears, evalDropped: held.dropped };
  return {
    train: { tokens: train, window: L },
    eval: { tokens: held.tokens, window: L, stride: evalStride(held.tokens.length, L, o.evalWindows) },
    meta,
  };
}

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
  const spec = (name: string, shape: number[]): TensorSpec => ({ name, shape, size: shape.reduce((a, d) => a * d, 1) });
  const out = [spec('wte/embeddings', [vocab, C]), spec('wpe/embeddings', [o.contextLength, C])];
  for (let i = 0; i < o.layers; i++) {
    const b = `block_${i}`;
    out.push(
      spec(`${b}/layer_norm_1/gamma`, [C]), spec(`${b}/layer_norm_1/beta`, [C]),
      spec(`${b}/attn/qkv/kernel`, [C, 3 * C]), spec(`${b}/attn/qkv/bias`, [3 * C]),
      spec(`${b}/attn/proj/kernel`, [C, C]), spec(`${b}/attn/proj/bias`, [C]),
      spec(`${b}/layer_norm_2/gamma`, [C]), spec(`${b}/layer_norm_2/beta`, [C]),
      spec(`${b}/mlp/fc/kernel`, [C, H]), spec(`${b}/mlp/fc/bias`, [H]),
      spec(`${b}/mlp/proj/kernel`, [H, C]), spec(`${b}/mlp/proj/bias`, [C]),
    );
  }
  out.push(spec('layer_norm_f/gamma', [C]), spec('layer_norm_f/beta', [C]));
  if (!o.tieEmbeddings) out.push(spec('lm_head/kernel', [C, vocab]));
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
  const vocab = sotuCorpus(seed, o.evalFraction).vocab.length;
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

/** Continuations of `prompt` (default: a newline, i.e. the start of an address), `tokens` characters each. */
export function sample(ctx: SampleContext): string[] {
  const { vocab, contextLength } = ctx.meta as GptMeta;
  return sampleTokens({ ...ctx, lastLogits: tfjsLastLogits(ctx.tf, ctx.model), vocab, contextLength });
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
  const { contextLength, embedding, heads, layers, mlpRatio, tieEmbeddings } = o;
  return { module: 'GPT', options: { vocab, contextLength, embedding, heads, layers, mlpRatio, tieEmbeddings }, tensors: tensors.map((t) => ({ name: t.name, ...rename(t.name) })) };
}
