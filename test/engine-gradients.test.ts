// The built-in models on shardtrain's engine, whole: loss and every gradient element of a tiny gpt (tied and
// untied head) and a tiny char-lm against central finite differences of a float64 loss written from the
// definitions (test/gpt-reference.ts, and the char-lm's below), against the tfjs engine on the same params
// and batch, and the same bits for teams of 1, 2 and 3 members. Tensors cross shard boundaries (1,024-float
// shards), so the hand-off to the gradient slot is checked across them too.
//
// Tolerances: finite differences of the float64 loss at h = 1e-4 have truncation ~h²·|f'''| ≈ 1e-8 and
// rounding ~1e-16/h; the engine's gradients are float32 sums of at most a few hundred terms (γₙ·Σ|terms|,
// with Σ|terms| ≤ 10·|fd| + 1e-3 at these sizes): 2e-6 + 1e-4·|fd| covers both, the bound test/gpt-layers.test.ts
// holds tfjs to. Between the engines, each is within its own float32 bound of the exact value: 1e-6 + 2e-4·|g|.

import { expect } from 'chai';
import type * as TF from '@tensorflow/tfjs-core';
import { startModel } from '../src/models/model-module.js';
import { initTf, tf } from '../src/tfjs/tf.js';
import { soloEngine, type SoloEngine } from './fixtures/engine-harness.js';
import { refLoss, type RefParams } from './gpt-reference.js';
import { freshSeed, rng } from './reference.js';

const seed = freshSeed();

/** Initial values plus noise, so that LayerNorm γ, β and the biases are not 1 and 0. */
function perturbed(e: SoloEngine, next: () => number): Float32Array[] {
  return e.model.initialValues(1).map((v) => v.map((x) => x + 0.2 * (next() - 0.5)));
}

function asRef(e: SoloEngine, values: readonly Float32Array[]): RefParams {
  return Object.fromEntries(e.model.tensors.map((t, i) => [t.name, Float64Array.from(values[i])]));
}

/** char-lm in float64: embedding → [dense → LayerNorm → tanh]* → dense → mean cross-entropy. */
function charLmLoss(p: RefParams, hidden: readonly number[], ctx: number, E: number, V: number, x: Int32Array, y: Int32Array, B: number): number {
  let a = new Float64Array(B * ctx * E);
  for (let b = 0; b < B; b++) for (let j = 0; j < ctx; j++) for (let e = 0; e < E; e++) a[(b * ctx + j) * E + e] = p['embedding/embeddings'][x[b * ctx + j] * E + e];
  let width = ctx * E;
  const dense = (inp: Float64Array, w: Float64Array, bias: Float64Array, n: number, m: number) => {
    const out = new Float64Array(B * m);
    for (let r = 0; r < B; r++) for (let j = 0; j < m; j++) {
      let s = bias[j];
      for (let k = 0; k < n; k++) s += inp[r * n + k] * w[k * m + j];
      out[r * m + j] = s;
    }
    return out;
  };
  hidden.forEach((units, i) => {
    const h = dense(a, p[`hidden_${i}/kernel`], p[`hidden_${i}/bias`], width, units);
    const out = new Float64Array(B * units);
    for (let r = 0; r < B; r++) {
      let mean = 0;
      for (let c = 0; c < units; c++) mean += h[r * units + c] / units;
      let v = 0;
      for (let c = 0; c < units; c++) v += (h[r * units + c] - mean) ** 2 / units;
      for (let c = 0; c < units; c++) out[r * units + c] = Math.tanh(((h[r * units + c] - mean) / Math.sqrt(v + 1e-5)) * p[`layer_norm_${i}/gamma`][c] + p[`layer_norm_${i}/beta`][c]);
    }
    a = out;
    width = units;
  });
  const logits = dense(a, p['logits/kernel'], p['logits/bias'], width, V);
  let total = 0;
  for (let r = 0; r < B; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    const max = Math.max(...row);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    total += max + Math.log(z) - row[y[r]];
  }
  return total / B;
}

interface Case {
  readonly name: string;
  readonly module: 'gpt' | 'char-lm';
  readonly options: Record<string, unknown>;
  readonly examples: number[];
}

const cases: Case[] = [
  { name: 'gpt, tied head', module: 'gpt', options: { contextLength: 5, embedding: 8, heads: 2, layers: 2, mlpRatio: 2, evalWindows: 4 }, examples: [3, 100000] },
  { name: 'gpt, its own head', module: 'gpt', options: { contextLength: 5, embedding: 8, heads: 2, layers: 1, mlpRatio: 2, tieEmbeddings: false, evalWindows: 4 }, examples: [7, 2, 50000] },
  // nanoGPT's bias=False: no Linear bias, no LayerNorm β (the tfjs engine has no such GPT to compare with).
  { name: 'gpt, bias-free', module: 'gpt', options: { contextLength: 5, embedding: 8, heads: 2, layers: 2, mlpRatio: 2, bias: false, evalWindows: 4 }, examples: [11, 4, 70000] },
  { name: 'char-lm, two hidden layers', module: 'char-lm', options: { contextLength: 3, embedding: 4, hidden: [12, 7] }, examples: [0, 5, 17, 3000] },
];

describe(`shardtrain engine: whole-model gradients (seed ${seed})`, function () {
  this.timeout(120000);
  for (const c of cases) {
    describe(c.name, () => {
      let e: SoloEngine;
      let values: Float32Array[];
      let ref: (p: RefParams) => number;
      before(async () => {
        e = await soloEngine(c.module, c.options, 1, c.examples.length);
        values = perturbed(e, rng(seed ^ c.name.length));
        e.setParams(values);
        const batch = gather(e, c.examples);
        if (c.module === 'gpt') {
          const o = c.options as { contextLength: number; embedding: number; heads: number; layers: number; tieEmbeddings?: boolean };
          const shape = { vocab: e.model.vocab, embedding: o.embedding, heads: o.heads, layers: o.layers, tied: o.tieEmbeddings !== false };
          ref = (p) => refLoss(p, shape, batch.x, batch.y, c.examples.length, o.contextLength);
        } else {
          const o = c.options as { contextLength: number; embedding: number; hidden: number[] };
          ref = (p) => charLmLoss(p, o.hidden, o.contextLength, o.embedding, e.model.vocab, batch.x, batch.y, c.examples.length);
        }
      });

      it('the loss equals the float64 loss, and every gradient element its central difference (the arena poisoned with NaN first)', () => {
        // Every byte the pass reads it (or the copy-in, or the gather) wrote first: the bias-free GPT's zero β too.
        e.runner.f32.fill(Number.NaN);
        const { loss, grads } = e.gradients(c.examples, 1);
        const p = asRef(e, values);
        const exact = ref(p);
        expect(Math.abs(loss - exact), `loss ${loss}, float64 ${exact}`).to.be.below(1e-5 * exact);
        const h = 1e-4;
        let checked = 0;
        e.model.tensors.forEach((t, ti) => {
          const x = p[t.name];
          for (let i = 0; i < t.size; i++) {
            const x0 = x[i];
            x[i] = x0 + h;
            const up = ref(p);
            x[i] = x0 - h;
            const down = ref(p);
            x[i] = x0;
            const fd = (up - down) / (2 * h);
            expect(Math.abs(grads[ti][i] - fd), `${t.name}[${i}]: engine ${grads[ti][i]}, finite difference ${fd}`).to.be.below(2e-6 + 1e-4 * Math.abs(fd));
            checked++;
          }
        });
        expect(checked).to.equal(e.model.tensors.reduce((n, t) => n + t.size, 0));
      });

      it('teams of 1, 2 and 3 members give the same bits (loss and every gradient)', () => {
        const bits = [1, 2, 3].map((members) => {
          const { loss, grads } = e.gradients(c.examples, members);
          return [loss, ...grads.map((g) => Buffer.from(g.buffer).toString('hex'))];
        });
        expect(bits[1]).to.deep.equal(bits[0]);
        expect(bits[2]).to.deep.equal(bits[0]);
      });

      if (c.options.bias === false) {
        it('has no bias and no LayerNorm β: wte, wpe, 6 tensors per block, layer_norm_f/gamma', () => {
          const names = e.model.tensors.map((t) => t.name);
          expect(names.filter((n) => /\/(bias|beta)$/.test(n))).to.deep.equal([]);
          expect(names).to.have.length(2 + 6 * 2 + 1);
        });
      }

      if (c.options.bias !== false) it('the tfjs engine gives the same loss and gradients on the same params and batch (float32 bounds)', async () => {
        await initTf('wasm');
        const started = await startModel({ module: c.module, options: c.options, seed: 1, backend: 'wasm' });
        const { loss, grads } = e.gradients(c.examples, 2);
        const batch = gather(e, c.examples);
        const variables = started.model.trainableWeights.map((w) => w.read() as TF.Variable);
        variables.forEach((v, i) => v.assign(tf.tensor(values[i], v.shape, 'float32')));
        const isWindow = c.module === 'gpt';
        const B = c.examples.length;
        const x = tf.tensor(batch.x, isWindow ? [B, e.model.window] : [B, batch.x.length / B], 'int32');
        const y = tf.tensor(batch.y, isWindow ? [B, e.model.window] : [B], 'int32');
        const { value, grads: theirs } = tf.variableGrads(() => started.module.loss({ tf, model: started.model, x, y }), variables);
        expect(Math.abs(value.dataSync()[0] - loss)).to.be.below(1e-5 * loss);
        variables.forEach((v, i) => {
          const g = theirs[v.name].dataSync();
          for (let j = 0; j < g.length; j++) expect(Math.abs(g[j] - grads[i][j]), `${e.model.tensors[i].name}[${j}]`).to.be.below(1e-6 + 2e-4 * Math.abs(g[j]));
        });
        tf.dispose([x, y, value, ...Object.values(theirs)]);
      });
    });
  }
});

/** The inputs and targets of training examples `indices`, as the engine gathers them. */
function gather(e: SoloEngine, indices: readonly number[]): { x: Int32Array; y: Int32Array } {
  const set = e.data.train;
  if ('tokens' in set) {
    const T = set.window;
    const x = new Int32Array(indices.length * T);
    const y = new Int32Array(indices.length * T);
    indices.forEach((s, i) => {
      x.set(set.tokens.subarray(s, s + T), i * T);
      y.set(set.tokens.subarray(s + 1, s + T + 1), i * T);
    });
    return { x, y };
  }
  const xs = set.x.length / set.y.length;
  const x = new Int32Array(indices.length * xs);
  const y = new Int32Array(indices.length);
  indices.forEach((s, i) => {
    x.set((set.x as Int32Array).subarray(s * xs, (s + 1) * xs), i * xs);
    y[i] = set.y[s];
  });
  return { x, y };
}
