// The GPT's math against a float64 reference written from the definitions (test/gpt-reference.ts):
// LayerNorm, GELU, causal attention, whole-model logits; the causal mask (future tokens never move earlier
// logits); and the gradients tfjs computes (through tf.variableGrads, on the wasm backend: the token
// embedding's gather gradient needs the UnsortedSegmentSum kernel shardtrain registers) against central
// finite differences of the float64 loss.

import { expect } from 'chai';
import type * as TF from '@tensorflow/tfjs-core';
import { initTf, tf, tfl } from '../src/tfjs/tf.js';
import * as gpt from '../src/models/gpt.js';
import { causalSelfAttention, gelu, layerNorm } from '../src/models/gpt-layers.js';
import { mulberry32 } from '../src/models/random.js';
import { refAttention, refGelu, refLayerNorm, refLogits, refLoss, type RefParams, type RefShape } from './gpt-reference.js';

/** Uniform values in [-scale, scale), rounded to float32 (so tfjs and the reference see the same numbers). */
function randomF32(n: number, rand: () => number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * rand() - 1) * scale);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const tiny = (tieEmbeddings: boolean) => ({ contextLength: 6, embedding: 8, heads: 2, layers: 2, mlpRatio: 2, tieEmbeddings, evalWindows: 4 });

/** The tiny model with random params of a larger scale than the init (so attention is far from uniform). */
function tinyModel(tieEmbeddings: boolean, seed: number): { model: ReturnType<typeof gpt.createModel>; params: RefParams; shape: RefShape } {
  const options = tiny(tieEmbeddings);
  const model = gpt.createModel({ tf, tfl, options, seed: 3 });
  const rand = mulberry32(seed);
  const params: RefParams = {};
  for (const w of model.trainableWeights) {
    const size = (w.shape as number[]).reduce((a, d) => a * d, 1);
    const values = randomF32(size, rand, /gamma$/.test(w.originalName) ? 0.5 : 0.4);
    if (/gamma$/.test(w.originalName)) for (let i = 0; i < size; i++) values[i] += 1;
    tf.tidy(() => (w.read() as TF.Variable).assign(tf.tensor(values, w.shape as number[])));
    params[w.originalName] = Float64Array.from(values);
  }
  const vocab = (model.trainableWeights[0].shape as number[])[0];
  return { model, params, shape: { vocab, embedding: 8, heads: 2, layers: 2, tied: tieEmbeddings } };
}

describe('gpt layers against float64 references', function () {
  this.timeout(120000);
  before(async () => {
    expect(await initTf('wasm')).to.equal('wasm');
  });

  it('LayerNorm matches (x − μ)/√(σ² + 1e-5)·γ + β', () => {
    const rand = mulberry32(11);
    const [rows, C] = [7, 24];
    const x = randomF32(rows * C, rand, 3);
    const gamma = randomF32(C, rand, 1);
    const beta = randomF32(C, rand, 1);
    const got = tf.tidy(() => layerNorm(tf, tf.tensor2d(x, [rows, C]), tf.tensor1d(gamma), tf.tensor1d(beta)).dataSync());
    const want = refLayerNorm(Float64Array.from(x), rows, C, Float64Array.from(gamma), Float64Array.from(beta));
    // Outputs are O(1): float32 rounding of a mean, a variance and a few products stays near 1e-6.
    expect(maxAbsDiff(got, want)).to.be.below(5e-6);
  });

  it('GELU (tanh form) matches on [-6, 6]', () => {
    const x = Float32Array.from({ length: 241 }, (_, i) => -6 + i * 0.05);
    const got = tf.tidy(() => gelu(tf, tf.tensor1d(x)).dataSync());
    expect(maxAbsDiff(got, Array.from(x, refGelu))).to.be.below(2e-6);
  });

  it('causal multi-head attention matches softmax(q·kᵀ/√d over j ≤ i)·v, heads concatenated, projected', () => {
    const rand = mulberry32(12);
    const [B, L, C, H] = [2, 5, 12, 3];
    const w = { qkvKernel: randomF32(C * 3 * C, rand, 0.5), qkvBias: randomF32(3 * C, rand, 0.3), projKernel: randomF32(C * C, rand, 0.5), projBias: randomF32(C, rand, 0.3) };
    const x = randomF32(B * L * C, rand, 1);
    const got = tf.tidy(() =>
      causalSelfAttention(
        tf,
        tf.tensor3d(x, [B, L, C]),
        { qkvKernel: tf.tensor2d(w.qkvKernel, [C, 3 * C]), qkvBias: tf.tensor1d(w.qkvBias), projKernel: tf.tensor2d(w.projKernel, [C, C]), projBias: tf.tensor1d(w.projBias) },
        H,
      ).dataSync(),
    );
    const p: RefParams = { 'a/qkv/kernel': Float64Array.from(w.qkvKernel), 'a/qkv/bias': Float64Array.from(w.qkvBias), 'a/proj/kernel': Float64Array.from(w.projKernel), 'a/proj/bias': Float64Array.from(w.projBias) };
    const want = refAttention(Float64Array.from(x), B, L, C, H, p, 'a');
    // Outputs are O(1–5); three float32 matmuls of depth ≤ 12 and a softmax.
    expect(maxAbsDiff(got, want)).to.be.below(2e-5);
  });

  for (const tied of [true, false]) {
    it(`the whole model's logits match (${tied ? 'tied' : 'untied'} head)`, () => {
      const { model, params, shape } = tinyModel(tied, 21);
      const [B, L] = [2, 6];
      const rand = mulberry32(5);
      const tokens = Int32Array.from({ length: B * L }, () => Math.floor(rand() * shape.vocab));
      const got = tf.tidy(() => (model.apply(tf.tensor2d(tokens, [B, L], 'int32')) as TF.Tensor).dataSync());
      const want = refLogits(params, shape, tokens, B, L);
      let scale = 0;
      for (const v of want) scale = Math.max(scale, Math.abs(v));
      expect(scale).to.be.above(1); // logits far from zero: the comparison means something
      expect(maxAbsDiff(got, want) / scale).to.be.below(1e-5);
    });
  }

  it('causal mask: changing later tokens leaves every earlier position\'s logits bit for bit unchanged', () => {
    const { model, shape } = tinyModel(true, 22);
    const L = 6;
    const rand = mulberry32(6);
    const base = Int32Array.from({ length: L }, () => Math.floor(rand() * shape.vocab));
    const logits = (t: Int32Array) => tf.tidy(() => (model.apply(tf.tensor2d(t, [1, L], 'int32')) as TF.Tensor).dataSync() as Float32Array);
    const before = logits(base);
    for (let k = 1; k < L; k++) {
      const changed = base.slice();
      for (let i = k; i < L; i++) changed[i] = (changed[i] + 1 + i) % shape.vocab;
      const after = logits(changed);
      const V = shape.vocab;
      expect(Buffer.from(after.buffer, 0, k * V * 4).equals(Buffer.from(before.buffer, 0, k * V * 4)), `positions < ${k}`).to.equal(true);
      // …while position k itself does change: the test would pass vacuously otherwise.
      expect(maxAbsDiff(after.subarray(k * V, (k + 1) * V), before.subarray(k * V, (k + 1) * V))).to.be.above(1e-3);
    }
  });

  for (const tied of [true, false]) {
    it(`tf.variableGrads of the loss match central finite differences of the float64 loss, every element (${tied ? 'tied' : 'untied'}, wasm)`, () => {
      const { model, params, shape } = tinyModel(tied, 23);
      const [B, L] = [2, 6];
      const rand = mulberry32(7);
      // Few distinct tokens, some repeated: the embedding gradient sums rows (UnsortedSegmentSum).
      const x = Int32Array.from({ length: B * L }, () => Math.floor(rand() * 5));
      const y = Int32Array.from({ length: B * L }, () => Math.floor(rand() * 5));
      const variables = model.trainableWeights.map((w) => w.read() as TF.Variable);
      const grads = tf.tidy(() => {
        const { grads: g } = tf.variableGrads(() => gpt.loss({ tf, model, x: tf.tensor2d(x, [B, L], 'int32'), y: tf.tensor2d(y, [B, L], 'int32') }), variables);
        return variables.map((v) => g[v.name].dataSync() as Float32Array);
      });
      const h = 1e-6;
      let checked = 0;
      let largest = 0;
      model.trainableWeights.forEach((w, t) => {
        const p = params[w.originalName];
        for (let i = 0; i < p.length; i++) {
          const keep = p[i];
          p[i] = keep + h;
          const up = refLoss(params, shape, x, y, B, L);
          p[i] = keep - h;
          const down = refLoss(params, shape, x, y, B, L);
          p[i] = keep;
          const fd = (up - down) / (2 * h); // float64: error ~1e-9 here, far below float32's
          // float32 gradient of a loss ~5 whose terms are O(1): absolute error a few 1e-7.
          expect(Math.abs(grads[t][i] - fd), `${w.originalName}[${i}]: tfjs ${grads[t][i]}, finite difference ${fd}`).to.be.below(2e-6 + 1e-4 * Math.abs(fd));
          largest = Math.max(largest, Math.abs(fd));
          checked++;
        }
      });
      expect(checked).to.equal(model.trainableWeights.reduce((a, w) => a + (w.shape as number[]).reduce((s, d) => s * d, 1), 0));
      expect(largest).to.be.above(1e-2);
    });
  }
});
