// Our Sum, Mean, Tanh, Exp, GatherV2, Identity and Cast: the wasm loops on a memory of their own (NaN-poisoned, fenced outputs)
// against float64, then the tfjs kernels on the wasm backend against float64 and the cpu backend, and what
// goes to tfjs's own kernels. SHARDTRAIN_SEED=… replays a run.
//
// Tolerances: a float32 sum of n terms in any order is within γₙ₋₁·Σ|terms| of exact (γₙ = n·u/(1 − n·u),
// u = 2⁻²⁴), and a Mean adds one rounding of the division. Our tanh and exp are within 3 and 2 ulps
// (derivations in map.wat.mjs); the cpu backend's (Math.tanh, Math.exp, rounded once) within half an ulp.

import { expect } from 'chai';
import type * as TF from '@tensorflow/tfjs-core';
import { Ops } from '../src/kernels/ops.js';
import { reductionRuns } from '../src/tfjs/reduce-kernels.js';
import { initTf, tf } from '../src/tfjs/tf.js';
import { registerWasmKernels, restoreTfjsKernels } from '../src/tfjs/register.js';
import { freshSeed, randomArray, rng } from './reference.js';

const u = 2 ** -24;
const seed = freshSeed();
const gamma = (n: number): number => (Math.max(n, 0) * u) / (1 - Math.max(n, 0) * u);

/** float32 ulp of |v| (the gap to the next float32 up). */
function ulp(v: number): number {
  const f = Math.fround(Math.abs(v));
  const bits = new Uint32Array(new Float32Array([f]).buffer)[0];
  return new Float32Array(new Uint32Array([bits + 1]).buffer)[0] - f;
}

describe(`wasm ops on a memory of their own, seed ${seed}`, () => {
  const memory = new WebAssembly.Memory({ initial: 640 });
  const ops = new Ops(memory);
  const heap = () => new Float32Array(memory.buffer);
  const kIn = 1024;
  const kOut = 20 * 1024 * 1024;
  const kFence = 12345;

  /** Poison out[0, n) with NaN and fence 8 floats either side; returns a check that the fences held. */
  function poison(n: number): () => void {
    heap().fill(kFence, kOut / 4 - 8, kOut / 4);
    heap().fill(NaN, kOut / 4, kOut / 4 + n);
    heap().fill(kFence, kOut / 4 + n, kOut / 4 + n + 8);
    return () => {
      const h = heap();
      for (let g = 1; g <= 8; g++) expect([h[kOut / 4 - g], h[kOut / 4 + n + g - 1]], 'a store outside the output').to.deep.equal([kFence, kFence]);
    };
  }

  for (const [rows, cols] of [[1, 1], [1, 7], [7, 1], [3, 17], [64, 19], [512, 256], [5, 33], [0, 4], [4, 0]]) {
    for (const which of ['sumRows', 'sumCols'] as const) {
      for (const div of [1, 3]) {
        it(`${which} ${rows}×${cols}${div === 1 ? '' : ', ÷ 3'}: within γ of float64, every output written`, () => {
          const next = rng(seed ^ (rows * 1000 + cols));
          const x = randomArray(rows * cols, next);
          heap().set(x, kIn / 4);
          const n = which === 'sumRows' ? cols : rows;
          const fences = poison(n);
          ops[which](kIn, rows, cols, kOut, div);
          fences();
          const got = heap().subarray(kOut / 4, kOut / 4 + n);
          const terms = which === 'sumRows' ? rows : cols;
          for (let o = 0; o < n; o++) {
            let s = 0;
            let abs = 0;
            for (let t = 0; t < terms; t++) {
              const v = which === 'sumRows' ? x[t * cols + o] : x[o * cols + t];
              s += v;
              abs += Math.abs(v);
            }
            // the division rounds once more (exact when div is 1)
            const bound = (gamma(terms - 1) * abs) / div + (div === 1 ? 0 : u * Math.abs(s / div)) + 2 ** -140;
            if (!(Math.abs(got[o] - s / div) <= bound)) expect.fail(`output ${o}: ${got[o]} vs float64 ${s / div}, bound ${bound}`);
          }
        });
      }
    }
  }

  it('tanh: within 3 ulps of Math.tanh on every 256th float32 in [0, 9.5], both signs; tails of 1, 2, 3 elements', () => {
    const top = new Uint32Array(new Float32Array([9.5]).buffer)[0];
    const n = Math.floor(top / 256);
    const bits = new Uint32Array(memory.buffer, kIn, n);
    for (let i = 0; i < n; i++) bits[i] = (i * 256) | (i % 2 === 1 ? 0x80000000 : 0);
    const fences = poison(n);
    ops.tanh(kIn, kOut, n);
    fences();
    const x = new Float32Array(memory.buffer, kIn, n);
    const y = new Float32Array(memory.buffer, kOut, n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.tanh(x[i]);
      // subnormal inputs: tanh(x) = x to within float32's resolution there
      const err = Math.abs(y[i] - want) / Math.max(ulp(want), 2 ** -149);
      if (!(err <= 3)) expect.fail(`tanh(${x[i]}) = ${y[i]}, Math.tanh ${want}: ${err} ulps`);
      worst = Math.max(worst, err);
    }
    expect(worst).to.be.greaterThan(0); // the sweep reached inexact results
    for (const tail of [1, 2, 3, 5, 6, 7]) {
      heap().set([0.3, -0.7, 2, -5, 0.01, 9, -0.5], kIn / 4);
      const check = poison(tail);
      ops.tanh(kIn, kOut, tail);
      check();
      const got = Array.from(heap().subarray(kOut / 4, kOut / 4 + tail));
      got.forEach((v, i) => expect(Math.abs(v - Math.tanh(heap()[kIn / 4 + i]))).to.be.at.most(3 * ulp(v)));
    }
  });

  it('tanh of special values: NaN, ±0 (sign kept), ±∞, ±10, a subnormal', () => {
    const x = [NaN, 0, -0, Infinity, -Infinity, 10, -10, 1e-40];
    heap().set(x, kIn / 4);
    ops.tanh(kIn, kOut, x.length);
    const y = Array.from(heap().subarray(kOut / 4, kOut / 4 + x.length));
    expect(y.map((v) => (Object.is(v, -0) ? '-0' : String(v)))).to.deep.equal(['NaN', '0', '-0', '1', '-1', '1', '-1', String(Math.fround(1e-40))]);
  });

  it('exp: within 2 ulps of Math.exp wherever the result is a normal float32 (every 1024th float32 in [−104, 89]); 0 and ∞ beyond', () => {
    const lo = new Uint32Array(new Float32Array([-104]).buffer)[0];
    const hi = new Uint32Array(new Float32Array([89]).buffer)[0];
    const xs: number[] = [];
    for (let b = 0; b < hi; b += 1024) xs.push(new Float32Array(new Uint32Array([b]).buffer)[0]);
    for (let b = 0x80000000; b < lo; b += 1024) xs.push(new Float32Array(new Uint32Array([b]).buffer)[0]);
    heap().set(xs, kIn / 4);
    const fences = poison(xs.length);
    ops.exp(kIn, kOut, xs.length);
    fences();
    const y = heap().subarray(kOut / 4, kOut / 4 + xs.length);
    let worst = 0;
    xs.forEach((x, i) => {
      const want = Math.exp(x);
      // above float32's range (beyond FLT_MAX + ½ ulp, where rounding goes to ∞): +∞
      if (want > 3.4028235677973366e38) return void expect(y[i], `exp(${x})`).to.equal(Infinity);
      const normal = want >= 2 ** -126;
      // below the normal range the result rounds once into the subnormals: within one subnormal step
      const err = Math.abs(y[i] - want) / (normal ? ulp(want) : 2 ** -149);
      if (!(err <= (normal ? 2 : 1))) expect.fail(`exp(${x}) = ${y[i]}, Math.exp ${want}: ${err} ulps`);
      if (normal) worst = Math.max(worst, err);
    });
    expect(worst).to.be.greaterThan(0);
    heap().set([NaN, -Infinity, Infinity, 89, -105, 0, -0], kIn / 4);
    ops.exp(kIn, kOut, 7);
    expect(Array.from(heap().subarray(kOut / 4, kOut / 4 + 7))).to.deep.equal([NaN, 0, Infinity, Infinity, 0, 1, 1]);
  });

  it('gatherRows copies whole rows, and writes nothing when an id is out of range', () => {
    const table = Float32Array.from({ length: 5 * 3 }, (_, i) => i);
    heap().set(table, kIn / 4);
    const ids = new Int32Array(memory.buffer, 64, 4);
    ids.set([4, 0, 4, 2]);
    const fences = poison(12);
    expect(ops.gatherRows(kIn, 5, 12, 64, 4, kOut)).to.equal(-1);
    fences();
    expect(Array.from(heap().subarray(kOut / 4, kOut / 4 + 12))).to.deep.equal([12, 13, 14, 0, 1, 2, 12, 13, 14, 6, 7, 8]);
    for (const bad of [5, -1]) {
      ids.set([1, 2, bad, 0]);
      poison(12);
      expect(ops.gatherRows(kIn, 5, 12, 64, 4, kOut)).to.equal(2);
      expect(heap().subarray(kOut / 4, kOut / 4 + 12).every(Number.isNaN), 'nothing written').to.equal(true);
    }
  });
});

describe('reductionRuns: which loop a Sum/Mean becomes', () => {
  const pattern = (shape: number[], axes: number[]) => reductionRuns(shape, axes).map((r) => `${r.reduced ? 'R' : 'K'}${r.size}`).join(' ');
  it('drops size-1 dimensions and merges neighbours of the same kind', () => {
    expect(pattern([512, 256], [0])).to.equal('R512 K256');
    expect(pattern([1, 512, 256], [0, 1])).to.equal('R512 K256');
    expect(pattern([2, 3, 4, 5], [2, 3])).to.equal('K6 R20');
    expect(pattern([2, 3, 4], [1])).to.equal('K2 R3 K4');
    expect(pattern([2, 3, 4], [0, 2])).to.equal('R2 K3 R4');
    expect(pattern([1, 1], [0])).to.equal('');
  });
});

describe(`Sum, Mean, Tanh, Exp, GatherV2, Identity, Cast on the wasm backend, seed ${seed}`, function () {
  this.timeout(60000);
  before(async () => {
    expect(await initTf('wasm')).to.equal('wasm');
    registerWasmKernels(tf);
  });

  async function onBoth<T>(f: () => T): Promise<{ wasm: T; cpu: T }> {
    const wasm = f();
    await tf.setBackend('cpu');
    try {
      return { wasm, cpu: f() };
    } finally {
      await tf.setBackend('wasm');
    }
  }

  const reductions: ReadonlyArray<{ shape: number[]; axis: number | number[] | null; keepDims: boolean }> = [
    { shape: [512, 256], axis: 0, keepDims: false },
    { shape: [512, 256], axis: -1, keepDims: true },
    { shape: [1, 512, 28], axis: [0, 1], keepDims: false },
    { shape: [2, 3, 4, 5], axis: [2, 3], keepDims: true },
    { shape: [6, 7, 9], axis: 1, keepDims: false },
    { shape: [6, 7, 9], axis: [0, 2], keepDims: false }, // R K R: tfjs's kernel
    { shape: [5, 6], axis: null, keepDims: false },
    { shape: [1, 1], axis: 0, keepDims: false },
    { shape: [0, 4], axis: 0, keepDims: false }, // empty: tfjs's wasm kernel leaves the output unwritten; ours 0 (sum), NaN (mean)
    { shape: [7], axis: 0, keepDims: true },
  ];
  for (const op of ['sum', 'mean'] as const) {
    for (const r of reductions) {
      it(`tf.${op} of [${r.shape}] over ${JSON.stringify(r.axis)}${r.keepDims ? ', keepDims' : ''}: float64 and cpu agree`, async () => {
        const next = rng(seed ^ r.shape.reduce((p, d) => p * 31 + d, 7));
        const size = r.shape.reduce((p, d) => p * d, 1);
        const x = randomArray(size, next);
        const { wasm, cpu } = await onBoth(() => tf.tidy(() => {
          const y = tf[op](tf.tensor(x, r.shape), r.axis ?? undefined, r.keepDims);
          return { shape: y.shape, values: y.dataSync() as Float32Array };
        }));
        expect(wasm.shape).to.deep.equal(cpu.shape);
        if (op === 'mean' && size === 0) {
          // 0/0: NaN, as TensorFlow's reduce_mean gives; tfjs's cpu backend divides each element first and says 0.
          expect(Array.from(wasm.values).every(Number.isNaN)).to.equal(true);
          return;
        }
        const axes = r.axis === null ? r.shape.map((_, i) => i) : tf.util.parseAxisParam(r.axis, r.shape);
        const count = axes.reduce((p, a) => p * r.shape[a], 1);
        // Each output is a sum over `count` inputs; bound it with the largest |x| (a sufficient, simpler bound).
        const maxAbs = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const bound = ((gamma(count - 1) * count * maxAbs) / (op === 'mean' ? count : 1)) + u * maxAbs + 2 ** -140;
        wasm.values.forEach((v, i) => {
          if (!(Math.abs(v - cpu.values[i]) <= 2 * bound) && !(Number.isNaN(v) && Number.isNaN(cpu.values[i]))) expect.fail(`output ${i}: ${v} vs cpu ${cpu.values[i]}`);
        });
      });
    }
  }

  it('tf.tanh: within 3.5 ulps of the cpu backend (3 ours, ½ its rounding of Math.tanh), odd length', async () => {
    const x = randomArray(1001, rng(seed ^ 0x7a), 6);
    const { wasm, cpu } = await onBoth(() => tf.tidy(() => tf.tanh(tf.tensor1d(x)).dataSync() as Float32Array));
    wasm.forEach((v, i) => expect(Math.abs(v - cpu[i]), `tanh(${x[i]})`).to.be.at.most(3.5 * ulp(cpu[i])));
  });

  it('tf.exp: within 2.5 ulps of the cpu backend (2 ours, ½ its rounding of Math.exp), odd length', async () => {
    const x = randomArray(1001, rng(seed ^ 0xe4), 30);
    const { wasm, cpu } = await onBoth(() => tf.tidy(() => tf.exp(tf.tensor1d(x)).dataSync() as Float32Array));
    wasm.forEach((v, i) => expect(Math.abs(v - cpu[i]), `exp(${x[i]})`).to.be.at.most(2.5 * ulp(cpu[i])));
  });

  const gathers: ReadonlyArray<{ what: string; shape: number[]; dtype: 'float32' | 'int32'; indices: number[]; indicesShape: number[]; axis: number; batchDims?: number }> = [
    { what: 'an embedding lookup (axis 0)', shape: [28, 24], dtype: 'float32', indices: [3, 0, 27, 3, 5, 5], indicesShape: [2, 3], axis: 0 },
    { what: 'axis 1 of a 3-D tensor', shape: [2, 5, 3], dtype: 'float32', indices: [4, 1], indicesShape: [2], axis: 1 },
    { what: 'int32 values, negative axis', shape: [4, 6], dtype: 'int32', indices: [5, 0, 2], indicesShape: [3], axis: -1 },
    { what: 'no indices', shape: [4, 6], dtype: 'float32', indices: [], indicesShape: [0], axis: 0 },
    { what: 'batchDims 1 (tfjs\'s kernel)', shape: [2, 4, 3], dtype: 'float32', indices: [1, 3, 0, 2], indicesShape: [2, 2], axis: 1, batchDims: 1 },
  ];
  for (const g of gathers) {
    it(`tf.gather, ${g.what}: the same values and shape as the cpu backend`, async () => {
      const x = Float32Array.from({ length: g.shape.reduce((p, d) => p * d, 1) }, (_, i) => i * 1.5 - 7);
      const { wasm, cpu } = await onBoth(() => tf.tidy(() => {
        const y = tf.gather(tf.tensor(g.dtype === 'int32' ? Int32Array.from(x) : x, g.shape, g.dtype), tf.tensor(g.indices, g.indicesShape, 'int32'), g.axis, g.batchDims ?? 0);
        return { shape: y.shape, dtype: y.dtype, values: Array.from(y.dataSync()) };
      }));
      expect(wasm).to.deep.equal(cpu);
    });
  }

  it('Identity and Cast to the same dtype share the input\'s buffer (no new buffer), and outlive the input', () => {
    const x = tf.tensor2d([1.5, -2, 3, 4.25], [2, 2]);
    const buffers = tf.memory().numDataBuffers;
    const copies = [tf.clone(x), tf.cast(x, 'float32'), tf.engine().runKernel('Identity', { x }) as TF.Tensor];
    expect(tf.memory().numDataBuffers, 'no new buffer').to.equal(buffers);
    x.dispose();
    copies.forEach((c) => expect(Array.from(c.dataSync())).to.deep.equal([1.5, -2, 3, 4.25]));
    copies.forEach((c) => c.dispose());
    expect(tf.memory().numDataBuffers, 'the shared buffer goes with the last tensor').to.equal(buffers - 1);
  });

  it("Cast to another dtype: tfjs's kernel (float32 → int32 truncates)", async () => {
    const { wasm, cpu } = await onBoth(() => tf.tidy(() => Array.from(tf.cast(tf.tensor1d([1.7, -2.5, 0, 3]), 'int32').dataSync())));
    expect(wasm).to.deep.equal(cpu);
    expect(wasm).to.deep.equal([1, -2, 0, 3]);
  });

  it("an index out of range: tfjs's own error", () => {
    const gather = () => tf.tidy(() => tf.gather(tf.ones([3, 2]), tf.tensor1d([0, 3], 'int32')).dataSync());
    const ours = (() => { try { gather(); return 'no error'; } catch (e) { return (e as Error).message; } })();
    restoreTfjsKernels(tf);
    const theirs = (() => { try { gather(); return 'no error'; } catch (e) { return (e as Error).message; } })();
    registerWasmKernels(tf);
    expect(theirs).to.match(/index value 3 is not in \[0, 2\]/);
    expect(ours).to.equal(theirs);
  });

  for (const backend of ['wasm', 'cpu'] as const) {
    it(`Sum and Mean gradients (ours: ones from Fill) give tfjs's bits exactly, on ${backend}`, async () => {
      const next = rng(seed ^ 0x5a);
      const x = randomArray(6 * 7 * 5, next);
      const c = [randomArray(6 * 7, next), randomArray(7 * 5, next), randomArray(1, next)];
      const grads = () => tf.tidy(() => {
        const f = (t: TF.Tensor) => tf.addN([
          tf.sum(tf.mul(tf.mean(t, -1), tf.tensor2d(c[0], [6, 7]))),
          tf.sum(tf.mul(tf.sum(t, 0), tf.tensor2d(c[1], [7, 5]))),
          tf.mul(tf.mean(t), tf.scalar(c[2][0])),
          tf.sum(tf.mul(tf.mean(t, [0, 2], true), tf.tensor3d(c[0].slice(0, 7), [1, 7, 1]))),
        ]) as TF.Scalar;
        return Array.from(tf.grad(f)(tf.tensor3d(x, [6, 7, 5])).dataSync());
      });
      await tf.setBackend(backend);
      try {
        registerWasmKernels(tf);
        const ours = grads();
        restoreTfjsKernels(tf);
        const theirs = grads();
        registerWasmKernels(tf);
        expect(Buffer.from(Float32Array.from(ours).buffer).equals(Buffer.from(Float32Array.from(theirs).buffer))).to.equal(true);
        expect(ours.some((v) => v !== 0)).to.equal(true);
      } finally {
        await tf.setBackend('wasm');
      }
    });
  }

  it('gradients of embedding → tanh → sums (gather, tanh, Sum over leading and trailing axes) match the cpu backend', async () => {
    const next = rng(seed ^ 0x9a7);
    const table = randomArray(28 * 6, next);
    const w = randomArray(4 * 6, next);
    const ids = Int32Array.from({ length: 4 * 3 }, () => Math.floor(next() * 28));
    const grads = () => tf.tidy(() => {
      const f = (t: TF.Tensor, v: TF.Tensor) => tf.sum(tf.square(tf.sum(tf.mean(tf.tanh(tf.mul(tf.gather(t, tf.tensor2d(ids, [4, 3], 'int32')), tf.reshape(v, [4, 1, 6]))), -1), 0)));
      return tf.grads(f)([tf.tensor2d(table, [28, 6]), tf.tensor2d(w, [4, 6])]).map((g) => Array.from(g.dataSync()));
    });
    const { wasm, cpu } = await onBoth(grads);
    // Few, short sums (≤ 6 terms) and tanh's 3 ulps: 1e-6 relative to each gradient's largest element.
    wasm.forEach((g, t) => {
      const scale = Math.max(...cpu[t].map(Math.abs));
      expect(scale).to.be.greaterThan(0);
      g.forEach((v, i) => expect(Math.abs(v - cpu[t][i]), `gradient ${t}[${i}]`).to.be.at.most(1e-6 * scale));
    });
  });
});
