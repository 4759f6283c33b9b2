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
//
// The bias-free GPT (options.bias false, nanoGPT's bias=False) has no tensor for any bias or LayerNorm β:
// the Linear layers take no bias (and compute no bias gradient), and the LayerNorms read β from a slot of
// C zeros that the pass zeroes first (x·γ + 0 is exactly x·γ), their β gradient going to a slot that is
// never read — the layer kernels have one shape, and that column sum is C·rows additions, next to nothing
// beside the block's products.

import type { TensorSpec } from '../memory/layout.js';
import type { SlotSpec } from '../nn/arena.js';
import { attentionBackward, attentionForward, attentionScratchBytes, type AttentionSaved } from '../nn/attention.js';
import { crossEntropyForward, crossEntropyForwardBackward } from '../nn/cross-entropy.js';
import { encoderBackward, encoderForward } from '../nn/embedding.js';
import { geluBackward, geluForward } from '../nn/activations.js';
import type { Kernels } from '../nn/kernels.js';
import { layerNormBackward, layerNormForward } from '../nn/layer-norm.js';
import { linearBackward, linearForward } from '../nn/linear.js';
import { memberSlice, type Program, type Ptr } from '../nn/program.js';
import { copyRows } from '../nn/copy.js';
import { residualForward } from '../nn/residual.js';
import type { EngineModel, EngineSampleRequest, PassAddresses, PassHooks, PassShape } from './engine-model.js';
import { gptInitialValues, gptTensors, type GptMeta, type GptOptions } from './gpt.js';
import { checkSampleRequest, sampleTokens } from './gpt-sample.js';
import { kLayerNormEpsilon } from './gpt-layers.js';
import { tokenizerFor, type Tokenizer } from './tokenizer.js';

/** A block's tensors, by the part of their name after `block_<l>/`. */
type BlockPart =
  | 'layer_norm_1/gamma' | 'layer_norm_1/beta' | 'attn/qkv/kernel' | 'attn/qkv/bias' | 'attn/proj/kernel' | 'attn/proj/bias'
  | 'layer_norm_2/gamma' | 'layer_norm_2/beta' | 'mlp/fc/kernel' | 'mlp/fc/bias' | 'mlp/proj/kernel' | 'mlp/proj/bias';

export class GptEngineModel implements EngineModel {
  readonly tensors: readonly TensorSpec[];
  readonly vocab: number;
  readonly window: number;
  readonly gradGroups: readonly (readonly number[])[];
  readonly persistentGrads: readonly number[];
  readonly #o: GptOptions;
  readonly #C: number;
  readonly #H: number;
  /** Each tensor's index, by name. */
  readonly #index: ReadonlyMap<string, number>;
  /** Index of lm_head/kernel, −1 when tied. */
  readonly #head: number;
  readonly #meta: GptMeta;
  #tokenizer: Tokenizer | null = null;

  constructor(o: GptOptions, meta: GptMeta) {
    this.#o = o;
    this.#meta = meta;
    this.vocab = meta.vocabSize;
    this.window = o.contextLength;
    this.#C = o.embedding;
    this.#H = o.mlpRatio * o.embedding;
    this.tensors = gptTensors(o, meta.vocabSize);
    this.#index = new Map(this.tensors.map((t, i) => [t.name, i]));
    this.#head = this.#index.get('lm_head/kernel') ?? -1;
    const where = (prefix: string) => this.tensors.flatMap((t, i) => (t.name.startsWith(prefix) ? [i] : []));
    const blocks = Array.from({ length: o.layers }, (_, l) => where(`block_${l}/`)).reverse();
    this.gradGroups = [[...where('layer_norm_f/'), ...where('lm_head/')], ...blocks, [0, 1]];
    // The tied head writes wte's gradient first; the embeddings' group adds the encoder's at the very end.
    this.persistentGrads = o.tieEmbeddings ? [0] : [];
  }

  /** The data's tokenizer, built on first use (GPT-2's loads its ranks: a worker that never samples never pays). */
  get tokenizer(): Tokenizer {
    this.#tokenizer ??= tokenizerFor(this.#meta.tokenizer);
    return this.#tokenizer;
  }

  /** The index of tensor `name`, or −1 (a bias of the bias-free GPT). */
  #tensor(name: string): number {
    return this.#index.get(name) ?? -1;
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
    if (!this.#o.bias) {
      add('zeros', C);
      if (kind === 'train') add('dbeta.unused', C);
    }
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
    const id = (l: number, part: BlockPart) => this.#tensor(`block_${l}/${part}`);
    const w = (l: number, part: BlockPart) => at.param(id(l, part));
    const g = (l: number, part: BlockPart) => at.grad(id(l, part));
    // A bias and its gradient, or none (the bias-free GPT); a LayerNorm's β and dβ, or the zeros and the unread slot.
    const bias = (i: number): Ptr | null => (i < 0 ? null : at.param(i));
    const dbias = (i: number): Ptr | null => (i < 0 ? null : at.grad(i));
    const beta = (i: number): Ptr => (i < 0 ? at.slot('zeros') : at.param(i));
    const dbeta = (i: number): Ptr => (i < 0 ? at.slot('dbeta.unused') : at.grad(i));
    const train = kind === 'train';
    // Slot names: per layer when training (the backward reads them all), shared otherwise.
    const s = (l: number, name: string) => at.slot(train ? `l${l}.${name}` : name);
    const streamIn = (l: number): Ptr => (train ? (l === 0 ? at.slot('encoded') : at.slot(`l${l - 1}.res3`)) : at.slot(`res.${l % 2}`));
    const streamOut = (l: number): Ptr => (train ? at.slot(`l${l}.res3`) : at.slot(`res.${(l + 1) % 2}`));
    const wte = at.param(0);
    const tied = this.#head < 0;
    const headWeight = tied ? wte : at.param(this.#head);

    // ---- forward ----
    if (!this.#o.bias) {
      const zeros = new Float32Array(k.memory.buffer, at.slot('zeros'), C);
      p.within('bias-free', () => p.push('zeros for β', (m, n) => zeros.fill(0, ...memberSlice(C, m, n, 16))));
    }
    p.within('embeddings', () => encoderForward(p, k, streamIn(0), at.inputs, wte, at.param(1), B, T, C));
    for (let l = 0; l < layers; l++) {
      p.within(`block_${l}`, () => {
        const x = streamIn(l);
        p.within('layer_norm_1', () => layerNormForward(p, k, s(l, 'ln1'), s(l, 'ln1.mean'), s(l, 'ln1.rstd'), x, w(l, 'layer_norm_1/gamma'), beta(id(l, 'layer_norm_1/beta')), rows, C, kLayerNormEpsilon));
        p.within('attn/qkv', () => linearForward(p, k, s(l, 'qkv'), s(l, 'ln1'), w(l, 'attn/qkv/kernel'), bias(id(l, 'attn/qkv/bias')), rows, C, 3 * C));
        p.within('attn', () => attentionForward(p, k, s(l, 'atty'), this.#saved(shape, l, at), s(l, 'qkv'), B, T, C, heads));
        p.within('attn/proj', () => {
          linearForward(p, k, s(l, 'res2'), s(l, 'atty'), w(l, 'attn/proj/kernel'), bias(id(l, 'attn/proj/bias')), rows, C, C);
          residualForward(p, k, s(l, 'res2'), x, s(l, 'res2'), rows * C);
        });
        p.within('layer_norm_2', () => layerNormForward(p, k, s(l, 'ln2'), s(l, 'ln2.mean'), s(l, 'ln2.rstd'), s(l, 'res2'), w(l, 'layer_norm_2/gamma'), beta(id(l, 'layer_norm_2/beta')), rows, C, kLayerNormEpsilon));
        p.within('mlp/fc', () => linearForward(p, k, s(l, 'fch'), s(l, 'ln2'), w(l, 'mlp/fc/kernel'), bias(id(l, 'mlp/fc/bias')), rows, C, H));
        p.within('mlp/gelu', () => geluForward(p, k, s(l, 'fchGelu'), s(l, 'fch'), rows * H));
        p.within('mlp/proj', () => {
          linearForward(p, k, streamOut(l), s(l, 'fchGelu'), w(l, 'mlp/proj/kernel'), bias(id(l, 'mlp/proj/bias')), rows, H, C);
          residualForward(p, k, streamOut(l), s(l, 'res2'), streamOut(l), rows * C);
        });
      });
    }
    const top = streamOut(layers - 1);
    const lnfGamma = at.param(this.#tensor('layer_norm_f/gamma'));
    const lnfBeta = this.#tensor('layer_norm_f/beta');
    if (kind === 'sample') {
      // Only the last position of each sequence is read: LayerNorm and head on B rows, not B·T.
      p.within('layer_norm_f', () => {
        copyRows(p, k, at.slot('last'), top + 4 * (T - 1) * C, B, C, T * C);
        layerNormForward(p, k, at.slot('lnf'), at.slot('lnf.mean'), at.slot('lnf.rstd'), at.slot('last'), lnfGamma, beta(lnfBeta), B, C, kLayerNormEpsilon);
      });
      p.within(tied ? 'lm_head (tied)' : 'lm_head', () => linearForward(p, k, at.logits, at.slot('lnf'), headWeight, null, B, C, V, { transposeWeight: tied }));
      return;
    }
    p.within('layer_norm_f', () => layerNormForward(p, k, at.slot('lnf'), at.slot('lnf.mean'), at.slot('lnf.rstd'), top, lnfGamma, beta(lnfBeta), rows, C, kLayerNormEpsilon));
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
      layerNormBackward(p, k, dres, at.grad(this.#tensor('layer_norm_f/gamma')), dbeta(lnfBeta), dln, top, lnfGamma, at.slot('lnf.mean'), at.slot('lnf.rstd'), rows, C, { accumulate: false }),
    );
    hooks.flush(0);
    for (let l = layers - 1; l >= 0; l--) {
      p.within(`block_${l}`, () => {
        const x = streamIn(l);
        p.within('mlp/proj', () => linearBackward(p, k, at.slot('dfch'), g(l, 'mlp/proj/kernel'), dbias(id(l, 'mlp/proj/bias')), dres, s(l, 'fchGelu'), w(l, 'mlp/proj/kernel'), rows, H, C));
        p.within('mlp/gelu', () => geluBackward(p, k, at.slot('dfch'), s(l, 'fch'), at.slot('dfch'), rows * H));
        p.within('mlp/fc', () => linearBackward(p, k, dln, g(l, 'mlp/fc/kernel'), dbias(id(l, 'mlp/fc/bias')), at.slot('dfch'), s(l, 'ln2'), w(l, 'mlp/fc/kernel'), rows, C, H));
        p.within('layer_norm_2', () =>
          layerNormBackward(p, k, dres, g(l, 'layer_norm_2/gamma'), dbeta(id(l, 'layer_norm_2/beta')), dln, s(l, 'res2'), w(l, 'layer_norm_2/gamma'), s(l, 'ln2.mean'), s(l, 'ln2.rstd'), rows, C, { accumulate: true }),
        );
        p.within('attn/proj', () => linearBackward(p, k, at.slot('datty'), g(l, 'attn/proj/kernel'), dbias(id(l, 'attn/proj/bias')), dres, s(l, 'atty'), w(l, 'attn/proj/kernel'), rows, C, C));
        p.within('attn', () => attentionBackward(p, k, at.slot('dqkv'), at.slot('datty'), s(l, 'qkv'), this.#saved(shape, l, at), B, T, C, heads));
        p.within('attn/qkv', () => linearBackward(p, k, dln, g(l, 'attn/qkv/kernel'), dbias(id(l, 'attn/qkv/bias')), at.slot('dqkv'), s(l, 'ln1'), w(l, 'attn/qkv/kernel'), rows, C, 3 * C));
        p.within('layer_norm_1', () =>
          layerNormBackward(p, k, dres, g(l, 'layer_norm_1/gamma'), dbeta(id(l, 'layer_norm_1/beta')), dln, x, w(l, 'layer_norm_1/gamma'), s(l, 'ln1.mean'), s(l, 'ln1.rstd'), rows, C, { accumulate: true }),
        );
      });
      hooks.flush(layers - l);
    }
    p.within('embeddings', () => encoderBackward(p, k, at.grad(0), at.grad(1), dres, at.inputs, B, T, C, V, { accumulateWte: tied }));
    hooks.flush(layers + 1);
  }

  checkSample(r: Omit<EngineSampleRequest, 'lastLogits' | 'maxBatch'>): void {
    checkSampleRequest({ ...r, tokenizer: this.tokenizer });
  }

  sample(r: EngineSampleRequest): string[] {
    return sampleTokens({ ...r, tokenizer: this.tokenizer, contextLength: this.#o.contextLength });
  }
}
