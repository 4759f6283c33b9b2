// The built-in char-lm on shardtrain's own engine: the same tensors and initial values as the tfjs model of
// char-lm.ts, on the layers of src/nn/. A train pass over B examples of contextLength ids:
//
//   forward   emb = embedding[ids] (B × contextLength·E, the flattened context)
//             per hidden layer i:  h_i = a_{i−1}·W_i + b_i; n_i = LN(h_i); a_i = tanh(n_i)   (a_{−1} = emb)
//             logits = a_last·W + b; losses = cross-entropy
//   backward  dlogits (in place) → da_last, dW, db; per layer, top down: tanh', LN', then the dense layer
//             into da_{i−1} (or demb); the embedding's scatter. One gradient group: the model is small.

import type { TensorSpec } from '../memory/layout.js';
import { tanhBackward, tanhForward } from '../nn/activations.js';
import type { SlotSpec } from '../nn/arena.js';
import { crossEntropyForward, crossEntropyForwardBackward } from '../nn/cross-entropy.js';
import { embeddingBackward, embeddingForward } from '../nn/embedding.js';
import type { Kernels } from '../nn/kernels.js';
import { layerNormBackward, layerNormForward } from '../nn/layer-norm.js';
import { linearBackward, linearForward } from '../nn/linear.js';
import type { Program } from '../nn/program.js';
import { charLmInitialValues, charLmTensors, sampleNames, type CharLmOptions } from './char-lm.js';
import type { EngineModel, EngineSampleRequest, PassAddresses, PassHooks, PassShape } from './engine-model.js';

/** torch.nn.LayerNorm's default ε, as the tfjs model's. */
const kEps = 1e-5;

export class CharLmEngineModel implements EngineModel {
  readonly tensors: readonly TensorSpec[];
  readonly vocab: number;
  readonly window = 1;
  readonly gradGroups: readonly (readonly number[])[];
  readonly persistentGrads: readonly number[] = [];
  readonly #o: CharLmOptions;
  readonly #chars: readonly string[];

  constructor(o: CharLmOptions, vocab: readonly string[]) {
    this.#o = o;
    this.#chars = vocab;
    this.vocab = vocab.length;
    this.tensors = charLmTensors(o, vocab.length);
    this.gradGroups = [this.tensors.map((_, i) => i)];
  }

  inputElements(): number {
    return this.#o.contextLength;
  }

  targetElements(): number {
    return 1;
  }

  lossRows(): number {
    return 1;
  }

  initialValues(seed: number): Float32Array[] {
    return charLmInitialValues(this.tensors, seed);
  }

  slots({ kind, batch: B }: PassShape): SlotSpec[] {
    const { contextLength, embedding, hidden } = this.#o;
    const widest = Math.max(...hidden);
    const out: SlotSpec[] = [{ name: 'emb', elements: B * contextLength * embedding }];
    hidden.forEach((units, i) => {
      out.push(
        { name: `h${i}`, elements: B * units },
        { name: `n${i}`, elements: B * units },
        { name: `n${i}.mean`, elements: B },
        { name: `n${i}.rstd`, elements: B },
        { name: `a${i}`, elements: B * units },
      );
    });
    if (kind !== 'sample') out.push({ name: 'logits', elements: B * this.vocab });
    if (kind === 'train') out.push({ name: 'da', elements: B * widest }, { name: 'dh', elements: B * widest }, { name: 'demb', elements: B * contextLength * embedding });
    return out;
  }

  scratchBytes(): number {
    return 0;
  }

  build(p: Program, k: Kernels, at: PassAddresses, shape: PassShape, hooks: PassHooks): void {
    const { kind, batch: B } = shape;
    const { contextLength, embedding: E, hidden } = this.#o;
    const V = this.vocab;
    // Tensor indices: 0 the embedding, then 4 per hidden layer (kernel, bias, gamma, beta), then the logits layer.
    const layer = (i: number) => 1 + 4 * i;
    const out = hidden.length;
    const widthIn = (i: number) => (i === 0 ? contextLength * E : hidden[i - 1]);
    const input = (i: number) => (i === 0 ? at.slot('emb') : at.slot(`a${i - 1}`));
    const logits = kind === 'sample' ? at.logits : at.slot('logits');
    const last = hidden.length === 0 ? at.slot('emb') : at.slot(`a${hidden.length - 1}`);
    const lastWidth = widthIn(hidden.length);

    p.within('embedding', () => embeddingForward(p, k, at.slot('emb'), at.inputs, at.param(0), B * contextLength, E));
    hidden.forEach((units, i) => {
      const t = layer(i);
      p.within(`hidden_${i}`, () => linearForward(p, k, at.slot(`h${i}`), input(i), at.param(t), at.param(t + 1), B, widthIn(i), units));
      p.within(`layer_norm_${i}`, () => layerNormForward(p, k, at.slot(`n${i}`), at.slot(`n${i}.mean`), at.slot(`n${i}.rstd`), at.slot(`h${i}`), at.param(t + 2), at.param(t + 3), B, units, kEps));
      p.within(`tanh_${i}`, () => tanhForward(p, k, at.slot(`a${i}`), at.slot(`n${i}`), B * units));
    });
    const head = layer(out);
    p.within('logits', () => linearForward(p, k, logits, last, at.param(head), at.param(head + 1), B, lastWidth, V));
    if (kind === 'sample') return;
    if (kind === 'eval') {
      p.within('loss', () => crossEntropyForward(p, k, at.losses, logits, at.targets, B, V));
      return;
    }
    p.within('loss', () => crossEntropyForwardBackward(p, k, at.losses, logits, at.targets, B, V, shape.lossScale));
    const da = at.slot('da');
    const dh = at.slot('dh');
    p.within('logits', () => linearBackward(p, k, hidden.length === 0 ? at.slot('demb') : da, at.grad(head), at.grad(head + 1), logits, last, at.param(head), B, lastWidth, V));
    for (let i = hidden.length - 1; i >= 0; i--) {
      const t = layer(i);
      const units = hidden[i];
      p.within(`tanh_${i}`, () => tanhBackward(p, k, da, at.slot(`a${i}`), da, B * units));
      p.within(`layer_norm_${i}`, () =>
        layerNormBackward(p, k, dh, at.grad(t + 2), at.grad(t + 3), da, at.slot(`h${i}`), at.param(t + 2), at.slot(`n${i}.mean`), at.slot(`n${i}.rstd`), B, units, { accumulate: false }),
      );
      p.within(`hidden_${i}`, () => linearBackward(p, k, i === 0 ? at.slot('demb') : da, at.grad(t), at.grad(t + 1), dh, input(i), at.param(t), B, widthIn(i), units));
    }
    p.within('embedding', () => embeddingBackward(p, k, at.grad(0), at.slot('demb'), at.inputs, B * contextLength, E, V));
    hooks.flush(0);
  }

  sample(r: EngineSampleRequest): string[] {
    return sampleNames({ logits: (contexts, batch) => r.lastLogits(contexts, batch, 1), count: r.count, seed: r.seed, vocab: this.#chars, contextLength: this.#o.contextLength, maxBatch: r.maxBatch });
  }
}
