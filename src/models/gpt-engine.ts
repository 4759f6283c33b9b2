// The built-in GPT on shardtrain's own engine: the same tensors, layouts and initial values as the tfjs model
// of gpt.ts, computed by the layers of src/nn/ (llm.c's train_gpt2.c, pass for pass). A train pass over B
// windows of T tokens (rows = B·T):
//
//   forward   encoded = wte[tokens] + wpe                          (the residual stream x₀)
//             per block l:  ln1 = LN(x_l); qkv = ln1·W_qkv + b; atty = attention(qkv)
//                           res2 = x_l + atty·W_proj + b
//                           ln2 = LN(res2); fch = ln2·W_fc + b; fchGelu = GELU(fch)
//                           x_{l+1} = res3 = res2 + fchGelu·W_mlp + b
//             lnf = LN(x_L); logits = lnf·wteᵀ (tied) or lnf·W_head; losses = cross-entropy
//   backward  dlogits (in place of the logits) → d lnf, dwte (or dW_head) → dres = d x_L; group "head"
//             per block, top down: the MLP path, += LN2's, the attention path, += LN1's; group "block l"
//             the encoder: dwte (+= when tied), dwpe; group "embeddings"
//
// Activation gradients need one buffer of each kind for the whole backward (dres accumulates the residual
// stream's, the others are rewritten per block). Evaluation and sampling keep nothing for a backward, so
// their slots are one block's worth, reused by every block, and the residual stream ping-pongs.

import type { TensorSpec } from '../memory/layout.js';
import type { SlotSpec } from '../nn/arena.js';
import { attentionBackward, attentionForward, attentionScratchBytes, type AttentionSaved } from '../nn/attention.js';
import { crossEntropyForward, crossEntropyForwardBackward } from '../nn/cross-entropy.js';
import { encoderBackward, encoderForward } from '../nn/embedding.js';
import { geluBackward, geluForward } from '../nn/activations.js';
import type { Kernels } from '../nn/kernels.js';
import { layerNormBackward, layerNormForward } from '../nn/layer-norm.js';
import { linearBackward, linearForward } from '../nn/linear.js';
import type { Program, Ptr } from '../nn/program.js';
import { copyRows } from '../nn/copy.js';
import { residualForward } from '../nn/residual.js';
import type { EngineModel, EngineSampleRequest, PassAddresses, PassHooks, PassShape } from './engine-model.js';
import { gptInitialValues, gptTensors, type GptOptions } from './gpt.js';
import { checkSampleRequest, sampleTokens } from './gpt-sample.js';

/** GPT-2's LayerNorm ε (torch's default). */
const kEps = 1e-5;
/** Tensors per block, in the order gpt-layers.ts declares them. */
const kBlockTensors = 12;
const enum B_ {
  ln1Gamma,
  ln1Beta,
  qkvKernel,
  qkvBias,
  projKernel,
  projBias,
  ln2Gamma,
  ln2Beta,
  fcKernel,
  fcBias,
  mlpProjKernel,
  mlpProjBias,
}

export class GptEngineModel implements EngineModel {
  readonly tensors: readonly TensorSpec[];
  readonly vocab: number;
  readonly window: number;
  readonly gradGroups: readonly (readonly number[])[];
  readonly persistentGrads: readonly number[];
  readonly #o: GptOptions;
  readonly #C: number;
  readonly #H: number;
  /** Index of the first block tensor, of layer_norm_f, of lm_head (−1 when tied). */
  readonly #block0 = 2;
  readonly #lnf: number;
  readonly #head: number;
  readonly #charVocab: readonly string[];

  constructor(o: GptOptions, vocab: readonly string[]) {
    this.#o = o;
    this.#charVocab = vocab;
    this.vocab = vocab.length;
    this.window = o.contextLength;
    this.#C = o.embedding;
    this.#H = o.mlpRatio * o.embedding;
    this.tensors = gptTensors(o, vocab.length);
    this.#lnf = this.#block0 + kBlockTensors * o.layers;
    this.#head = o.tieEmbeddings ? -1 : this.#lnf + 2;
    const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
    const blocks = range(0, o.layers)
      .reverse()
      .map((l) => range(this.#block0 + kBlockTensors * l, kBlockTensors));
    const head = o.tieEmbeddings ? [this.#lnf, this.#lnf + 1] : [this.#lnf, this.#lnf + 1, this.#head];
    this.gradGroups = [head, ...blocks, [0, 1]];
    // The tied head writes wte's gradient first; the embeddings' group adds the encoder's at the very end.
    this.persistentGrads = o.tieEmbeddings ? [0] : [];
  }

  inputElements(tokens: number): number {
    return tokens;
  }

  targetElements(tokens: number): number {
    return tokens;
  }

  lossRows(tokens: number): number {
    return tokens;
  }

  initialValues(seed: number): Float32Array[] {
    return gptInitialValues(this.tensors, this.#o.layers, seed);
  }

  /** What the backward keeps of each block's attention: the probabilities, or at long context only the row sums. */
  #saved(shape: PassShape, l: number, at: PassAddresses | null): AttentionSaved {
    if (shape.kind !== 'train') return { kind: 'none' };
    if (this.#recompute(shape)) return { kind: 'lse', lse: at?.slot(`l${l}.lse`) ?? 0 };
    return { kind: 'probs', att: at?.slot(`l${l}.att`) ?? 0 };
  }

  /**
   * Recompute the attention scores in the backward when keeping them would cost more than the rest of the
   * block's activations (T·heads > 16·C: at GPT-2's width, contexts past 1024 with 12 heads).
   */
  #recompute(shape: PassShape): boolean {
    return shape.tokens * this.#o.heads > 16 * this.#C;
  }

  slots(shape: PassShape): SlotSpec[] {
    const { batch: B, tokens: T, kind } = shape;
    const { heads, layers } = this.#o;
    const C = this.#C;
    const H = this.#H;
    const rows = B * T;
    const out: SlotSpec[] = [];
    const add = (name: string, elements: number) => out.push({ name, elements });
    const block = (prefix: string) => {
      add(`${prefix}ln1`, rows * C);
      add(`${prefix}ln1.mean`, rows);
      add(`${prefix}ln1.rstd`, rows);
      add(`${prefix}qkv`, rows * 3 * C);
      add(`${prefix}atty`, rows * C);
      add(`${prefix}res2`, rows * C);
      add(`${prefix}ln2`, rows * C);
      add(`${prefix}ln2.mean`, rows);
      add(`${prefix}ln2.rstd`, rows);
      add(`${prefix}fch`, rows * H);
      add(`${prefix}fchGelu`, rows * H);
    };
    if (kind === 'train') {
      add('encoded', rows * C);
      for (let l = 0; l < layers; l++) {
        block(`l${l}.`);
        if (this.#recompute(shape)) add(`l${l}.lse`, B * heads * T);
        else add(`l${l}.att`, B * heads * T * T);
        add(`l${l}.res3`, rows * C);
      }
      add('lnf', rows * C);
      add('lnf.mean', rows);
      add('lnf.rstd', rows);
      add('logits', rows * this.vocab);
      add('dres', rows * C);
      add('dln', rows * C);
      add('dqkv', rows * 3 * C);
      add('datty', rows * C);
      add('dfch', rows * H);
    } else {
      // One block's worth, reused by every block; the stream alternates between two buffers.
      add('res.0', rows * C);
      add('res.1', rows * C);
      block('');
      // The final LayerNorm: over every row for eval, over the last position of each sequence for samples.
      const headRows = kind === 'eval' ? rows : B;
      add('last', headRows * C);
      add('lnf', headRows * C);
      add('lnf.mean', headRows);
      add('lnf.rstd', headRows);
      if (kind === 'eval') add('logits', rows * this.vocab);
    }
    return out;
  }

  scratchBytes(shape: PassShape): number {
    const kind = this.#saved(shape, 0, null).kind;
    const fwd = attentionScratchBytes(shape.tokens, this.#C, this.#o.heads, kind, 'forward');
    return shape.kind === 'train' ? Math.max(fwd, attentionScratchBytes(shape.tokens, this.#C, this.#o.heads, kind, 'backward')) : fwd;
  }

  build(p: Program, k: Kernels, at: PassAddresses, shape: PassShape, hooks: PassHooks): void {
    const { batch: B, tokens: T, kind } = shape;
    const { heads, layers } = this.#o;
    const C = this.#C;
    const H = this.#H;
    const V = this.vocab;
    const rows = B * T;
    const w = (l: number, t: B_) => at.param(this.#block0 + kBlockTensors * l + t);
    const g = (l: number, t: B_) => at.grad(this.#block0 + kBlockTensors * l + t);
    const train = kind === 'train';
    // Slot names: per layer when training (the backward reads them all), shared otherwise.
    const s = (l: number, name: string) => at.slot(train ? `l${l}.${name}` : name);
    const streamIn = (l: number): Ptr => (train ? (l === 0 ? at.slot('encoded') : at.slot(`l${l - 1}.res3`)) : at.slot(`res.${l % 2}`));
    const streamOut = (l: number): Ptr => (train ? at.slot(`l${l}.res3`) : at.slot(`res.${(l + 1) % 2}`));
    const wte = at.param(0);
    const tied = this.#head < 0;
    const headWeight = tied ? wte : at.param(this.#head);

    // ---- forward ----
    p.within('embeddings', () => encoderForward(p, k, streamIn(0), at.inputs, wte, at.param(1), B, T, C));
    for (let l = 0; l < layers; l++) {
      p.within(`block_${l}`, () => {
        const x = streamIn(l);
        p.within('layer_norm_1', () => layerNormForward(p, k, s(l, 'ln1'), s(l, 'ln1.mean'), s(l, 'ln1.rstd'), x, w(l, B_.ln1Gamma), w(l, B_.ln1Beta), rows, C, kEps));
        p.within('attn/qkv', () => linearForward(p, k, s(l, 'qkv'), s(l, 'ln1'), w(l, B_.qkvKernel), w(l, B_.qkvBias), rows, C, 3 * C));
        p.within('attn', () => attentionForward(p, k, s(l, 'atty'), this.#saved(shape, l, at), s(l, 'qkv'), B, T, C, heads));
        p.within('attn/proj', () => {
          linearForward(p, k, s(l, 'res2'), s(l, 'atty'), w(l, B_.projKernel), w(l, B_.projBias), rows, C, C);
          residualForward(p, k, s(l, 'res2'), x, s(l, 'res2'), rows * C);
        });
        p.within('layer_norm_2', () => layerNormForward(p, k, s(l, 'ln2'), s(l, 'ln2.mean'), s(l, 'ln2.rstd'), s(l, 'res2'), w(l, B_.ln2Gamma), w(l, B_.ln2Beta), rows, C, kEps));
        p.within('mlp/fc', () => linearForward(p, k, s(l, 'fch'), s(l, 'ln2'), w(l, B_.fcKernel), w(l, B_.fcBias), rows, C, H));
        p.within('mlp/gelu', () => geluForward(p, k, s(l, 'fchGelu'), s(l, 'fch'), rows * H));
        p.within('mlp/proj', () => {
          linearForward(p, k, streamOut(l), s(l, 'fchGelu'), w(l, B_.mlpProjKernel), w(l, B_.mlpProjBias), rows, H, C);
          residualForward(p, k, streamOut(l), s(l, 'res2'), streamOut(l), rows * C);
        });
      });
    }
    const top = streamOut(layers - 1);
    const lnf = this.#lnf;
    if (kind === 'sample') {
      // Only the last position of each sequence is read: LayerNorm and head on B rows, not B·T.
      p.within('layer_norm_f', () => {
        copyRows(p, k, at.slot('last'), top + 4 * (T - 1) * C, B, C, T * C);
        layerNormForward(p, k, at.slot('lnf'), at.slot('lnf.mean'), at.slot('lnf.rstd'), at.slot('last'), at.param(lnf), at.param(lnf + 1), B, C, kEps);
      });
      p.within(tied ? 'lm_head (tied)' : 'lm_head', () => linearForward(p, k, at.logits, at.slot('lnf'), headWeight, null, B, C, V, { transposeWeight: tied }));
      return;
    }
    p.within('layer_norm_f', () => layerNormForward(p, k, at.slot('lnf'), at.slot('lnf.mean'), at.slot('lnf.rstd'), top, at.param(lnf), at.param(lnf + 1), rows, C, kEps));
    const logits = at.slot('logits');
    p.within(tied ? 'lm_head (tied)' : 'lm_head', () => linearForward(p, k, logits, at.slot('lnf'), headWeight, null, rows, C, V, { transposeWeight: tied }));
    if (!train) {
      p.within('loss', () => crossEntropyForward(p, k, at.losses, logits, at.targets, rows, V));
      return;
    }
    p.within('loss', () => crossEntropyForwardBackward(p, k, at.losses, logits, at.targets, rows, V, shape.lossScale));

    // ---- backward ----
    const dres = at.slot('dres');
    const dln = at.slot('dln');
    p.within(tied ? 'lm_head (tied)' : 'lm_head', () =>
      linearBackward(p, k, dln, tied ? at.grad(0) : at.grad(this.#head), null, logits, at.slot('lnf'), headWeight, rows, C, V, { transposeWeight: tied }),
    );
    p.within('layer_norm_f', () =>
      layerNormBackward(p, k, dres, at.grad(lnf), at.grad(lnf + 1), dln, top, at.param(lnf), at.slot('lnf.mean'), at.slot('lnf.rstd'), rows, C, { accumulate: false }),
    );
    hooks.flush(0);
    for (let l = layers - 1; l >= 0; l--) {
      p.within(`block_${l}`, () => {
        const x = streamIn(l);
        p.within('mlp/proj', () => linearBackward(p, k, at.slot('dfch'), g(l, B_.mlpProjKernel), g(l, B_.mlpProjBias), dres, s(l, 'fchGelu'), w(l, B_.mlpProjKernel), rows, H, C));
        p.within('mlp/gelu', () => geluBackward(p, k, at.slot('dfch'), s(l, 'fch'), at.slot('dfch'), rows * H));
        p.within('mlp/fc', () => linearBackward(p, k, dln, g(l, B_.fcKernel), g(l, B_.fcBias), at.slot('dfch'), s(l, 'ln2'), w(l, B_.fcKernel), rows, C, H));
        p.within('layer_norm_2', () =>
          layerNormBackward(p, k, dres, g(l, B_.ln2Gamma), g(l, B_.ln2Beta), dln, s(l, 'res2'), w(l, B_.ln2Gamma), s(l, 'ln2.mean'), s(l, 'ln2.rstd'), rows, C, { accumulate: true }),
        );
        p.within('attn/proj', () => linearBackward(p, k, at.slot('datty'), g(l, B_.projKernel), g(l, B_.projBias), dres, s(l, 'atty'), w(l, B_.projKernel), rows, C, C));
        p.within('attn', () => attentionBackward(p, k, at.slot('dqkv'), at.slot('datty'), s(l, 'qkv'), this.#saved(shape, l, at), B, T, C, heads));
        p.within('attn/qkv', () => linearBackward(p, k, dln, g(l, B_.qkvKernel), g(l, B_.qkvBias), at.slot('dqkv'), s(l, 'ln1'), w(l, B_.qkvKernel), rows, C, 3 * C));
        p.within('layer_norm_1', () =>
          layerNormBackward(p, k, dres, g(l, B_.ln1Gamma), g(l, B_.ln1Beta), dln, x, w(l, B_.ln1Gamma), s(l, 'ln1.mean'), s(l, 'ln1.rstd'), rows, C, { accumulate: true }),
        );
      });
      hooks.flush(layers - l);
    }
    p.within('embeddings', () => encoderBackward(p, k, at.grad(0), at.grad(1), dres, at.inputs, B, T, C, V, { accumulateWte: tied }));
    hooks.flush(layers + 1);
  }

  checkSample(r: Omit<EngineSampleRequest, 'lastLogits' | 'maxBatch'>): void {
    checkSampleRequest({ ...r, vocab: this.#charVocab });
  }

  sample(r: EngineSampleRequest): string[] {
    return sampleTokens({ ...r, vocab: this.#charVocab, contextLength: this.#o.contextLength });
  }
}
