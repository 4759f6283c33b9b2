// The GPT's math as plain tfjs functions (tested against float64 references in test/gpt-layers.test.ts) and
// the tfjs-layers Layer subclasses that own its weights. A Layer's weights are named `<layer>/<weight>`
// (LayerVariable.originalName), so a block layer `block_0` that adds `attn/qkv/kernel` gives the tensor
// `block_0/attn/qkv/kernel`. LayerNorms are named `layer_norm_*` so that BERT's exclusion rule
// (["LayerNorm", "layer_norm", "bias"]) leaves them undecayed, as it does in BERT.

import type * as TF from '@tensorflow/tfjs-core';
import type { Tf, Tfl } from './model-module.js';

/** torch.nn.LayerNorm's default ε (GPT-2 uses 1e-5 too). */
export const kLayerNormEpsilon = 1e-5;
/** Added to the scores of masked (future) positions: exp() of it underflows to exactly 0 in float32. */
const kMasked = -1e9;

/** LayerNorm over the last axis (biased variance, as torch): (x − μ)/√(σ² + ε)·γ + β. */
export function layerNorm(tf: Tf, x: TF.Tensor, gamma: TF.Tensor, beta: TF.Tensor): TF.Tensor {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, kLayerNormEpsilon))), gamma), beta);
}

/** GELU, tanh approximation (GPT-2's; torch.nn.GELU(approximate="tanh")). */
export function gelu(tf: Tf, x: TF.Tensor): TF.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** [L, L]: 0 on and below the diagonal, kMasked above (position i attends to positions ≤ i). */
export function causalMask(tf: Tf, length: number): TF.Tensor2D {
  const m = new Float32Array(length * length);
  for (let i = 0; i < length; i++) m.fill(kMasked, i * length + i + 1, (i + 1) * length);
  return tf.tensor2d(m, [length, length]);
}

/** Swap the last two axes. */
function transposeLast(tf: Tf, t: TF.Tensor): TF.Tensor {
  const perm = t.shape.map((_, i) => i);
  [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
  return tf.transpose(t, perm);
}

/**
 * a @ b (2-D, or 3-D batched) whose gradient multiplies by explicit transposes: dA = dY·Bᵀ, dB = Aᵀ·dY.
 * tfjs's own gradient uses matMul's transposeA/transposeB flags, and the wasm backend runs those 10–15×
 * slower than a plain product (measured: [1024,192]·[192,768] forward 22 ms, its dW 333 ms); a
 * transpose is one pass over memory. Same math; only the float32 summation order may differ.
 */
export function matMul(tf: Tf, a: TF.Tensor, b: TF.Tensor): TF.Tensor {
  const f = tf.customGrad((...args: (TF.Tensor | TF.GradSaveFunc)[]) => {
    const [x, w, save] = args as [TF.Tensor, TF.Tensor, TF.GradSaveFunc];
    save([x, w]);
    return {
      value: tf.matMul(x as TF.Tensor3D, w as TF.Tensor3D),
      gradFunc: (dy: TF.Tensor, saved: TF.Tensor[]) => [
        tf.matMul(dy as TF.Tensor3D, transposeLast(tf, saved[1]) as TF.Tensor3D),
        tf.matMul(transposeLast(tf, saved[0]) as TF.Tensor3D, dy as TF.Tensor3D),
      ],
    };
  });
  return f(a, b);
}

/** x [B, L, C] → x @ kernel + bias, computed as one 2-D matmul over the B·L rows. */
function linear(tf: Tf, x: TF.Tensor, kernel: TF.Tensor, bias: TF.Tensor): TF.Tensor {
  const [B, L, C] = x.shape;
  const y = tf.add(matMul(tf, tf.reshape(x, [B * L, C]), kernel), bias);
  return tf.reshape(y, [B, L, kernel.shape[1]!]);
}

/**
 * Causal multi-head self-attention on x [B, L, C] with one fused QKV projection (kernel [C, 3C], columns
 * q | k | v, each split into `heads` heads of C/heads): softmax(q·kᵀ/√d + mask)·v, heads concatenated,
 * then the output projection.
 */
export function causalSelfAttention(
  tf: Tf,
  x: TF.Tensor,
  w: { qkvKernel: TF.Tensor; qkvBias: TF.Tensor; projKernel: TF.Tensor; projBias: TF.Tensor },
  heads: number,
): TF.Tensor {
  const [B, L, C] = x.shape;
  const d = C / heads;
  // The fused kernel's three column blocks, each applied as its own product: splitting the small kernel
  // is cheap, while splitting the [B·L, 3C] product is a strided copy that the wasm backend runs slowly
  // (SplitV of [1024, 576]: ~65 ms, 3× its matmul). Then [B, L, C] → [B, H, L, d] → [B·H, L, d].
  const kernels = tf.split(w.qkvKernel, 3, 1);
  const biases = tf.split(w.qkvBias, 3, 0);
  const [q, k, v] = kernels.map((kernel, i) => tf.reshape(tf.transpose(tf.reshape(linear(tf, x, kernel, biases[i]), [B, L, heads, d]), [0, 2, 1, 3]), [B * heads, L, d]) as TF.Tensor3D);
  const scores = tf.add(tf.mul(matMul(tf, q, transposeLast(tf, k)), 1 / Math.sqrt(d)), causalMask(tf, L));
  const y = matMul(tf, tf.softmax(scores), v); // [B·H, L, d]
  const merged = tf.reshape(tf.transpose(tf.reshape(y, [B, heads, L, d]), [0, 2, 1, 3]), [B, L, C]);
  return linear(tf, merged, w.projKernel, w.projBias);
}

/** The weights of one pre-LayerNorm block, as tensors. */
export interface BlockWeights {
  ln1Gamma: TF.Tensor;
  ln1Beta: TF.Tensor;
  qkvKernel: TF.Tensor;
  qkvBias: TF.Tensor;
  projKernel: TF.Tensor;
  projBias: TF.Tensor;
  ln2Gamma: TF.Tensor;
  ln2Beta: TF.Tensor;
  fcKernel: TF.Tensor;
  fcBias: TF.Tensor;
  mlpProjKernel: TF.Tensor;
  mlpProjBias: TF.Tensor;
}

/** x + attn(ln_1(x)), then + mlp(ln_2(·)) (GPT-2's block). */
export function block(tf: Tf, x: TF.Tensor, w: BlockWeights, heads: number): TF.Tensor {
  const a = tf.add(x, causalSelfAttention(tf, layerNorm(tf, x, w.ln1Gamma, w.ln1Beta), w, heads));
  const h = gelu(tf, linear(tf, layerNorm(tf, a, w.ln2Gamma, w.ln2Beta), w.fcKernel, w.fcBias));
  return tf.add(a, linear(tf, h, w.mlpProjKernel, w.mlpProjBias));
}

// ---- Layer subclasses: they only own weights and call the functions above. ----

type Layer = InstanceType<Tfl['layers']['Layer']>;
type LayerArgs = ConstructorParameters<Tfl['layers']['Layer']>[0];
type LayerVariable = ReturnType<Layer['addWeight']>;
type Shape = Parameters<Layer['build']>[0];

/** The last dimension of a (possibly listed) input shape. */
function lastDim(shape: Shape): number {
  const s = (Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[];
  return s[s.length - 1] as number;
}

export interface GptLayerClasses {
  /** `block_i`: the weights of BlockWeights under names `layer_norm_1/gamma`, `attn/qkv/kernel`, …. */
  block(name: string, heads: number, mlpRatio: number): Layer;
  /** Adds `<name>/embeddings` [contextLength, C] (learned positions) to x [B, L ≤ contextLength, C]. */
  positions(name: string, contextLength: number): Layer;
  layerNorm(name: string): Layer;
  /** Logits [B, L, V]: x @ `<name>/kernel` [C, V], or x @ tokenEmbedding.embeddingsᵀ when tied. */
  head(name: string, vocab: number, tied: Layer | null): Layer;
}

const cache = new WeakMap<object, GptLayerClasses>();

/**
 * Layer classes for one (tf, tfl) pair: a model module gets tfjs passed in, so the classes are made from
 * the tfl it was given, once. Weights start at zeros: gpt.ts's init (GPT-2's scheme) writes them.
 */
export function gptLayers(tf: Tf, tfl: Tfl): GptLayerClasses {
  const hit = cache.get(tfl);
  if (hit) return hit;
  const zeros = () => tfl.initializers.zeros();
  const ones = () => tfl.initializers.ones();

  class Block extends tfl.layers.Layer {
    static readonly className = 'ShardtrainGptBlock';
    w: Record<keyof BlockWeights, LayerVariable> | null = null;
    constructor(args: LayerArgs, readonly heads: number, readonly mlpRatio: number) {
      super(args);
    }
    override build(inputShape: Shape): void {
      const C = lastDim(inputShape);
      const H = C * this.mlpRatio;
      const add = (name: string, shape: number[], init: ReturnType<typeof zeros>) => this.addWeight(name, shape, 'float32', init);
      // Declaration order is the tensor order in checkpoints: per sub-layer, as in the block's forward pass.
      this.w = {
        ln1Gamma: add('layer_norm_1/gamma', [C], ones()),
        ln1Beta: add('layer_norm_1/beta', [C], zeros()),
        qkvKernel: add('attn/qkv/kernel', [C, 3 * C], zeros()),
        qkvBias: add('attn/qkv/bias', [3 * C], zeros()),
        projKernel: add('attn/proj/kernel', [C, C], zeros()),
        projBias: add('attn/proj/bias', [C], zeros()),
        ln2Gamma: add('layer_norm_2/gamma', [C], ones()),
        ln2Beta: add('layer_norm_2/beta', [C], zeros()),
        fcKernel: add('mlp/fc/kernel', [C, H], zeros()),
        fcBias: add('mlp/fc/bias', [H], zeros()),
        mlpProjKernel: add('mlp/proj/kernel', [H, C], zeros()),
        mlpProjBias: add('mlp/proj/bias', [C], zeros()),
      };
      this.built = true;
    }
    override computeOutputShape(inputShape: Shape): Shape {
      return inputShape;
    }
    override call(inputs: TF.Tensor | TF.Tensor[]): TF.Tensor {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const w = Object.fromEntries(Object.entries(this.w!).map(([k, v]) => [k, v.read()])) as unknown as BlockWeights;
      return tf.tidy(() => block(tf, x, w, this.heads));
    }
  }

  class Positions extends tfl.layers.Layer {
    static readonly className = 'ShardtrainGptPositions';
    embeddings: LayerVariable | null = null;
    constructor(args: LayerArgs, readonly contextLength: number) {
      super(args);
    }
    override build(inputShape: Shape): void {
      this.embeddings = this.addWeight('embeddings', [this.contextLength, lastDim(inputShape)], 'float32', zeros());
      this.built = true;
    }
    override computeOutputShape(inputShape: Shape): Shape {
      return inputShape;
    }
    override call(inputs: TF.Tensor | TF.Tensor[]): TF.Tensor {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [, L, C] = x.shape;
      if (L! > this.contextLength) throw new RangeError(`gpt: a sequence of ${L} tokens is longer than contextLength ${this.contextLength}`);
      return tf.tidy(() => tf.add(x, tf.slice(this.embeddings!.read(), [0, 0], [L!, C!])));
    }
  }

  class LayerNorm extends tfl.layers.Layer {
    static readonly className = 'ShardtrainGptLayerNorm';
    gamma: LayerVariable | null = null;
    beta: LayerVariable | null = null;
    override build(inputShape: Shape): void {
      this.gamma = this.addWeight('gamma', [lastDim(inputShape)], 'float32', ones());
      this.beta = this.addWeight('beta', [lastDim(inputShape)], 'float32', zeros());
      this.built = true;
    }
    override computeOutputShape(inputShape: Shape): Shape {
      return inputShape;
    }
    override call(inputs: TF.Tensor | TF.Tensor[]): TF.Tensor {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return tf.tidy(() => layerNorm(tf, x, this.gamma!.read(), this.beta!.read()));
    }
  }

  class Head extends tfl.layers.Layer {
    static readonly className = 'ShardtrainGptHead';
    kernel: LayerVariable | null = null;
    constructor(args: LayerArgs, readonly vocab: number, readonly tied: Layer | null) {
      super(args);
    }
    override build(inputShape: Shape): void {
      // Tied: no weight of its own; the gradient reaches the token embedding through both of its uses.
      if (this.tied === null) this.kernel = this.addWeight('kernel', [lastDim(inputShape), this.vocab], 'float32', zeros());
      this.built = true;
    }
    override computeOutputShape(inputShape: Shape): Shape {
      const s = inputShape as (number | null)[];
      return [...s.slice(0, -1), this.vocab];
    }
    override call(inputs: TF.Tensor | TF.Tensor[]): TF.Tensor {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [B, L, C] = x.shape;
      return tf.tidy(() => {
        const rows = tf.reshape(x, [B * L, C]) as TF.Tensor2D;
        const kernel = this.tied === null ? this.kernel!.read() : transposeLast(tf, (this.tied as unknown as { embeddings: LayerVariable }).embeddings.read());
        const logits = matMul(tf, rows, kernel);
        return tf.reshape(logits, [B, L, this.vocab]);
      });
    }
  }

  const classes: GptLayerClasses = {
    block: (name, heads, mlpRatio) => new Block({ name }, heads, mlpRatio),
    positions: (name, contextLength) => new Positions({ name }, contextLength),
    layerNorm: (name) => new LayerNorm({ name }),
    head: (name, vocab, tied) => new Head({ name }, vocab, tied),
  };
  cache.set(tfl, classes);
  return classes;
}
