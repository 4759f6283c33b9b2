// Our matmul kernels as tfjs runs them (registered for the wasm backend): tf.matMul and tf.fused.matMul on
// fresh random inputs against a float64 reference and against tfjs's cpu backend, for both GEMM flavors; odd
// sizes, 1-wide, k = 0, empty batches, all transposes, broadcast batches, every bias shape and activation;
// gradients through tf.grad; what falls back to tfjs's own kernels; the same bits in a worker thread.
// SHARDTRAIN_SEED=… replays a run.
//
// Tolerance: each output is a float32 inner product of n = k + 1 terms (the products and the bias), within
// γₙ·Σ|terms| of exact in any summation order (see gemm.test.ts); an activation with Lipschitz constant L
// scales that by L and adds its own rounding, ≤ 4 ulps of the result for tfjs's elu and sigmoid kernels and
// one rounding for a product (leaky relu, prelu). The cpu backend lies within the same bound of exact, so
// ours and cpu's differ by at most twice of it.

import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import type * as TF from '@tensorflow/tfjs-core';
import { initTf, tf } from '../src/tfjs/tf.js';
import { kernelCalls, registerWasmKernels, restoreTfjsKernels } from '../src/tfjs/register.js';
import { matMulKernels } from '../src/tfjs/matmul-kernels.js';
import { compileModule } from '../src/kernels/wasm-modules.js';
import { backendMemory } from '../src/tfjs/wasm-backend.js';
import { freshSeed, randomArray, rng } from './reference.js';

const u = 2 ** -24;
const seed = freshSeed();

type Activation = 'linear' | 'relu' | 'relu6' | 'leakyrelu' | 'prelu' | 'elu' | 'sigmoid';

interface MatMulCase {
  aShape: number[];
  bShape: number[];
  transposeA: boolean;
  transposeB: boolean;
  biasShape?: number[];
  activation?: Activation;
}

const size = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** Flat index into `shape` (right-aligned, broadcast over 1s) of the output multi-index `idx`. */
function broadcastIndex(idx: readonly number[], shape: readonly number[]): number {
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + (shape[d] === 1 ? 0 : idx[idx.length - shape.length + d]);
  return flat;
}

/** float64 result and error bound of the case (tfjs's matMul semantics, written independently of ours). */
function reference(c: MatMulCase, a: Float32Array, b: Float32Array, bias: Float32Array | null, prelu: Float32Array | null): { shape: number[]; want: Float64Array; bound: Float64Array } {
  const ra = c.aShape.length;
  const rb = c.bShape.length;
  const m = c.transposeA ? c.aShape[ra - 1] : c.aShape[ra - 2];
  const k = c.transposeA ? c.aShape[ra - 2] : c.aShape[ra - 1];
  const n = c.transposeB ? c.bShape[rb - 2] : c.bShape[rb - 1];
  const aBatch = c.aShape.slice(0, -2);
  const bBatch = c.bShape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batch = Array.from({ length: rank }, (_, d) => {
    const x = aBatch[d - rank + aBatch.length] ?? 1;
    const y = bBatch[d - rank + bBatch.length] ?? 1;
    return x === 1 ? y : x;
  });
  const shape = [...batch, m, n];
  const want = new Float64Array(size(shape));
  const bound = new Float64Array(size(shape));
  const gamma = ((k + 1) * u) / (1 - (k + 1) * u);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < want.length; o++) {
    const bi = idx.slice(0, rank);
    const [i, j] = [idx[rank], idx[rank + 1]];
    const ab = broadcastIndex(bi, aBatch) * m * k;
    const bb = broadcastIndex(bi, bBatch) * k * n;
    let s = bias === null ? 0 : bias[broadcastIndex(idx, c.biasShape!)];
    let abs = Math.abs(s);
    for (let p = 0; p < k; p++) {
      const x = a[ab + (c.transposeA ? p * m + i : i * k + p)] * b[bb + (c.transposeB ? j * k + p : p * n + j)];
      s += x;
      abs += Math.abs(x);
    }
    let e = gamma * abs;
    const act = c.activation ?? 'linear';
    if (act === 'relu') s = Math.max(s, 0);
    else if (act === 'relu6') s = Math.min(Math.max(s, 0), 6);
    else if ((act === 'leakyrelu' || act === 'prelu') && s < 0) {
      const alpha = act === 'leakyrelu' ? 0.1 : prelu![j];
      s *= alpha;
      e = e * Math.max(1, Math.abs(alpha)) + u * (Math.abs(s) + e);
    } else if (act === 'elu' && s < 0) {
      s = Math.expm1(s);
      e += 4 * u * Math.abs(s);
    } else if (act === 'sigmoid') {
      s = 1 / (1 + Math.exp(-s));
      e = e / 4 + 4 * u * s;
    }
    want[o] = s;
    bound[o] = e + 2 ** -126;
    for (let d = shape.length - 1; d >= 0 && ++idx[d] === shape[d]; d--) idx[d] = 0;
  }
  return { shape, want, bound };
}

/** Run the case with tfjs on `backend`; returns the output's shape and values. */
async function runOn(backend: 'wasm' | 'cpu', c: MatMulCase, a: Float32Array, b: Float32Array, bias: Float32Array | null, prelu: Float32Array | null): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const at = tf.tensor(a, c.aShape);
      const bt = tf.tensor(b, c.bShape);
      const out = c.biasShape === undefined && c.activation === undefined
        ? tf.matMul(at, bt, c.transposeA, c.transposeB)
        : tf.fused.matMul({
            a: at, b: bt, transposeA: c.transposeA, transposeB: c.transposeB,
            bias: bias === null ? undefined : tf.tensor(bias, c.biasShape),
            activation: c.activation ?? 'linear',
            preluActivationWeights: prelu === null ? undefined : tf.tensor1d(prelu),
            leakyreluAlpha: 0.1,
          });
      return { shape: out.shape, values: out.dataSync() as Float32Array };
    });
  } finally {
    await tf.setBackend('wasm');
  }
}

async function checkCase(c: MatMulCase, next: () => number, compareCpu = true): Promise<void> {
  const a = randomArray(size(c.aShape), next);
  const b = randomArray(size(c.bShape), next);
  const bias = c.biasShape === undefined ? null : randomArray(size(c.biasShape), next);
  const n = c.transposeB ? c.bShape[c.bShape.length - 2] : c.bShape[c.bShape.length - 1];
  const prelu = c.activation === 'prelu' ? randomArray(n, next, 0.5) : null;
  const ref = reference(c, a, b, bias, prelu);
  const ours = await runOn('wasm', c, a, b, bias, prelu);
  const cpu = compareCpu ? await runOn('cpu', c, a, b, bias, prelu) : null;
  expect(ours.shape).to.deep.equal(ref.shape);
  if (cpu) expect(cpu.shape).to.deep.equal(ref.shape);
  for (let i = 0; i < ref.want.length; i++) {
    const err = Math.abs(ours.values[i] - ref.want[i]);
    if (!(err <= ref.bound[i])) expect.fail(`element ${i}: ours ${ours.values[i]}, float64 ${ref.want[i]}, error ${err} > ${ref.bound[i]}`);
    if (cpu === null) continue;
    const vsCpu = Math.abs(ours.values[i] - cpu.values[i]);
    if (!(vsCpu <= 2 * ref.bound[i])) expect.fail(`element ${i}: ours ${ours.values[i]}, cpu ${cpu.values[i]}, difference ${vsCpu} > ${2 * ref.bound[i]}`);
  }
}

/** Stored shapes for an m×k · k×n product with these transposes and batch dimensions. */
function stored(batchA: number[], batchB: number[], m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): MatMulCase {
  return { aShape: [...batchA, ...(transposeA ? [k, m] : [m, k])], bShape: [...batchB, ...(transposeB ? [n, k] : [k, n])], transposeA, transposeB };
}

const transposes: ReadonlyArray<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];
// cpu: false where tfjs 4.22's cpu backend is wrong. It pairs output batch t with batch t mod |a| of a and
// t mod |b| of b (tfjs PR #7062), which is broadcasting only when the broadcast dimensions come first; for
// [2,1] against [3] it multiplies the wrong matrices. Ours follows TensorFlow's BatchMatMulV2 (numpy
// broadcasting), as the float64 reference does.
const products: ReadonlyArray<{ what: string; batchA: number[]; batchB: number[]; m: number; k: number; n: number; cpu?: false }> = [
  { what: '1×1·1×1', batchA: [], batchB: [], m: 1, k: 1, n: 1 },
  { what: 'k = 1 (outer product)', batchA: [], batchB: [], m: 3, k: 1, n: 5 },
  { what: 'k = 0 (zeros)', batchA: [], batchB: [], m: 4, k: 0, n: 6 },
  { what: 'odd sizes, 2 k slabs', batchA: [], batchB: [], m: 37, k: 301, n: 29 },
  { what: 'a matrix-vector product', batchA: [], batchB: [], m: 19, k: 23, n: 1 },
  { what: 'empty batch', batchA: [0], batchB: [0], m: 3, k: 4, n: 5 },
  { what: 'batch 3 on both', batchA: [3], batchB: [3], m: 5, k: 7, n: 9 },
  { what: 'broadcast batches [2,3] and [3]', batchA: [2, 3], batchB: [3], m: 5, k: 7, n: 4 },
  { what: 'broadcast batches [2,1] and [3]', batchA: [2, 1], batchB: [3], m: 5, k: 7, n: 4, cpu: false },
  { what: 'a rank 2, b rank 3 (a broadcast)', batchA: [], batchB: [3], m: 5, k: 7, n: 4 },
  { what: 'b shared by a 2×3 batch (folds into one GEMM)', batchA: [2, 3], batchB: [], m: 5, k: 7, n: 4 },
];

const fusedBiases: ReadonlyArray<{ what: string; shape: (m: number, n: number) => number[] }> = [
  { what: 'bias [n]', shape: (_, n) => [n] },
  { what: 'bias [1]', shape: () => [1] },
  { what: 'bias []', shape: () => [] },
  { what: 'bias [1, n]', shape: (_, n) => [1, n] },
  { what: 'bias [m, n] (added after the GEMM)', shape: (m, n) => [m, n] },
  { what: 'bias [m, 1] (added after the GEMM)', shape: (m) => [m, 1] },
];
const activations: readonly Activation[] = ['linear', 'relu', 'relu6', 'leakyrelu', 'prelu', 'elu', 'sigmoid'];

describe(`tfjs kernels on the wasm backend, seed ${seed}`, function () {
  this.timeout(60000);

  before(async () => {
    expect(await initTf('wasm')).to.equal('wasm');
  });
  after(() => registerWasmKernels(tf));

  for (const flavor of ['relaxed', 'plain'] as const) {
    describe(`${flavor} GEMM`, () => {
      before(function () {
        if (flavor === 'relaxed' && compileModule('gemm-relaxed') instanceof Error) this.skip();
        expect(registerWasmKernels(tf, { simd: flavor }).flavor).to.equal(flavor);
      });

      for (const p of products) {
        for (const [transposeA, transposeB] of transposes) {
          it(`tf.matMul, ${p.what}${transposeA ? ', Aᵀ' : ''}${transposeB ? ', Bᵀ' : ''}`, async () => {
            const next = rng(seed ^ (p.m * 131 + p.k * 17 + p.n) ^ (transposeA ? 0x100 : 0) ^ (transposeB ? 0x200 : 0));
            await checkCase(stored(p.batchA, p.batchB, p.m, p.k, p.n, transposeA, transposeB), next, p.cpu ?? true);
          });
        }
      }

      for (const bias of fusedBiases) {
        for (const activation of activations) {
          it(`tf.fused.matMul, ${bias.what}, ${activation}`, async () => {
            const next = rng(seed ^ 0xf05ed);
            const [m, k, n] = [13, 40, 21];
            const [transposeA, transposeB] = [next() < 0.5, next() < 0.5];
            await checkCase({ ...stored([], [], m, k, n, transposeA, transposeB), biasShape: bias.shape(m, n), activation }, next);
          });
        }
      }

      it(`runs ours, not tfjs's: a sum whose last bit only ${flavor === 'relaxed' ? 'a fused' : 'an unfused'} multiply-add gives`, async function () {
        // (−(1 + 2⁻¹¹))·1 + (1 + 2⁻¹²)·(1 + 2⁻¹²) = 2⁻²⁴ exactly; an unfused second product loses the 2⁻²⁴ (see gemm.test.ts).
        const count = () => kernelCalls().get('BatchMatMul') ?? { calls: 0, toTfjs: 0 };
        const before = count();
        const out = tf.tidy(() => tf.matMul(tf.tensor2d([-(1 + 2 ** -11), 1 + 2 ** -12], [1, 2]), tf.tensor2d([1, 1 + 2 ** -12], [2, 1]), false, false).dataSync()[0]);
        const after = count();
        expect([after.calls - before.calls, after.toTfjs - before.toTfjs], 'BatchMatMul calls of ours, of them handed to tfjs').to.deep.equal([1, 0]);
        if (flavor === 'relaxed' && out === 0) this.skip(); // relaxed_madd without FMA hardware
        expect(out).to.equal(flavor === 'relaxed' ? 2 ** -24 : 0);
      });
    });
  }

  describe("what goes to tfjs's own kernels", () => {
    const errorOf = (f: () => unknown): string => {
      try {
        tf.tidy(() => void f());
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    const int32MatMul = () => tf.engine().runKernel('BatchMatMul', { a: tf.ones([2, 2], 'int32'), b: tf.ones([2, 2], 'int32') }, { transposeA: false, transposeB: false });
    const swish = () => tf.engine().runKernel('_FusedMatMul', { a: tf.ones([1, 2, 2]), b: tf.ones([1, 2, 2]) }, { transposeA: false, transposeB: false, activation: 'swish' });

    for (const [what, f] of [['int32 inputs', int32MatMul], ['an activation tfjs does not fuse', swish]] as const) {
      it(`${what}: the same outcome as with tfjs's kernels alone`, () => {
        registerWasmKernels(tf);
        const ours = errorOf(f);
        restoreTfjsKernels(tf);
        const theirs = errorOf(f);
        registerWasmKernels(tf);
        expect(theirs).to.not.equal('no error');
        expect(ours).to.equal(theirs);
      });
    }

    it('a backend whose memory cannot be reached: every call goes to the original kernel', () => {
      const calls: string[] = [];
      const original = (name: string): TF.KernelConfig => ({ kernelName: name, backendName: 'wasm', kernelFunc: () => (calls.push(name), { dataId: {}, shape: [1, 1], dtype: 'float32' }) });
      const [batch, fused] = matMulKernels({ tf, instancesFor: () => null, original });
      const inputs = { a: { dataId: {}, shape: [1, 1], dtype: 'float32' }, b: { dataId: {}, shape: [1, 1], dtype: 'float32' } } as unknown as TF.NamedTensorInfoMap;
      batch.kernelFunc({ inputs, backend: {} as TF.KernelBackend, attrs: { transposeA: false, transposeB: false } });
      fused.kernelFunc({ inputs, backend: {} as TF.KernelBackend, attrs: { transposeA: false, transposeB: false, activation: 'relu' } });
      expect(calls).to.deep.equal(['BatchMatMul', '_FusedMatMul']);
    });

    it('backendMemory names what it cannot find on a backend object', () => {
      expect(String(backendMemory({}))).to.equal('Error: the tfjs wasm backend has no emscripten module with _malloc/_free and a dataIdMap (tfjs-backend-wasm changed)');
      const noMemory = { wasm: { _malloc: () => 0, _free: () => undefined, asm: {} }, dataIdMap: { get: () => undefined } };
      expect(String(backendMemory(noMemory))).to.equal("Error: the tfjs wasm backend's WebAssembly.Memory is not reachable (no asm.memory or wasmExports.memory)");
      expect(backendMemory(tf.backend())).to.not.be.instanceOf(Error);
    });

    it('bad options give one-line errors', () => {
      expect(() => registerWasmKernels(tf, { simd: 'fast' as 'auto' })).to.throw(RangeError, 'options.simd must be one of auto, relaxed, plain, got "fast"');
      expect(() => registerWasmKernels(tf, { use: 'mine' as 'ours' })).to.throw(RangeError, 'options.use must be one of ours, tfjs, got "mine"');
      process.env.SHARDTRAIN_WASM_KERNELS = 'yes';
      try {
        expect(() => registerWasmKernels(tf)).to.throw(RangeError, 'SHARDTRAIN_WASM_KERNELS must be one of ours, tfjs, got "yes"');
      } finally {
        delete process.env.SHARDTRAIN_WASM_KERNELS;
      }
    });

    it("use: 'tfjs' (or SHARDTRAIN_WASM_KERNELS=tfjs) leaves tfjs's kernels in place", () => {
      const ours = tf.getKernel('BatchMatMul', 'wasm');
      expect(registerWasmKernels(tf, { use: 'tfjs' }).kernels).to.deep.equal([]);
      const theirs = tf.getKernel('BatchMatMul', 'wasm');
      expect(theirs).to.not.equal(ours);
      process.env.SHARDTRAIN_WASM_KERNELS = 'tfjs';
      try {
        expect(registerWasmKernels(tf).kernels).to.deep.equal([]);
        expect(tf.getKernel('BatchMatMul', 'wasm')).to.equal(theirs);
      } finally {
        delete process.env.SHARDTRAIN_WASM_KERNELS;
      }
      expect(registerWasmKernels(tf).kernels).to.include.members(['BatchMatMul', '_FusedMatMul', 'Sum', 'Mean', 'Tanh', 'GatherV2']);
    });
  });

  describe('gradients through tf.grad (the backward matmuls are transposed products)', () => {
    before(() => registerWasmKernels(tf));

    /** Gradients of sum(op(A)·op(B) ⊙ G) (plus bias when given): float64, with a γ bound per element. */
    function gradReference(c: MatMulCase, a: Float32Array, b: Float32Array, g: Float32Array, withBias: boolean) {
      const forward = reference(c, a, b, null, null);
      const [m, n] = forward.shape.slice(-2);
      const ra = c.aShape.length;
      const k = c.transposeA ? c.aShape[ra - 2] : c.aShape[ra - 1];
      const rank = forward.shape.length - 2;
      const aBatch = c.aShape.slice(0, -2);
      const bBatch = c.bShape.slice(0, -2);
      const acc = (len: number) => ({ v: new Float64Array(len), abs: new Float64Array(len), terms: new Float64Array(len) });
      const da = acc(a.length);
      const db = acc(b.length);
      const dbias = acc(n);
      const idx = new Array<number>(forward.shape.length).fill(0);
      for (let o = 0; o < g.length; o++) {
        const bi = idx.slice(0, rank);
        const [i, j] = [idx[rank], idx[rank + 1]];
        const ab = broadcastIndex(bi, aBatch) * m * k;
        const bb = broadcastIndex(bi, bBatch) * k * n;
        for (let p = 0; p < k; p++) {
          const ai = ab + (c.transposeA ? p * m + i : i * k + p);
          const bj = bb + (c.transposeB ? j * k + p : p * n + j);
          for (const [d, at, x] of [[da, ai, g[o] * b[bj]], [db, bj, g[o] * a[ai]]] as const) {
            d.v[at] += x;
            d.abs[at] += Math.abs(x);
            d.terms[at]++;
          }
        }
        dbias.v[j] += g[o];
        dbias.abs[j] += Math.abs(g[o]);
        dbias.terms[j]++;
        for (let d = idx.length - 1; d >= 0 && ++idx[d] === forward.shape[d]; d--) idx[d] = 0;
      }
      const bound = (d: ReturnType<typeof acc>) => d.abs.map((s, i) => (((d.terms[i] + 1) * u) / (1 - (d.terms[i] + 1) * u)) * s + 2 ** -126);
      const out = [{ want: da.v, bound: bound(da) }, { want: db.v, bound: bound(db) }];
      if (withBias) out.push({ want: dbias.v, bound: bound(dbias) });
      return { shape: forward.shape, grads: out };
    }

    async function gradsOn(backend: 'wasm' | 'cpu', c: MatMulCase, a: Float32Array, b: Float32Array, g: Float32Array, shape: number[], bias: Float32Array | null): Promise<Float32Array[]> {
      await tf.setBackend(backend);
      try {
        return tf.tidy(() => {
          const gt = tf.tensor(g, shape);
          const inputs = [tf.tensor(a, c.aShape), tf.tensor(b, c.bShape), ...(bias === null ? [] : [tf.tensor1d(bias)])];
          const f = (...xs: TF.Tensor[]) =>
            tf.sum(tf.mul(bias === null ? tf.matMul(xs[0], xs[1], c.transposeA, c.transposeB) : tf.fused.matMul({ a: xs[0], b: xs[1], transposeA: c.transposeA, transposeB: c.transposeB, bias: xs[2] }), gt));
          return tf.grads(f)(inputs).map((t) => t.dataSync() as Float32Array);
        });
      } finally {
        await tf.setBackend('wasm');
      }
    }

    const gradCases = [
      ...transposes.map(([tA, tB]) => ({ what: `17×33 · 33×11${tA ? ', Aᵀ' : ''}${tB ? ', Bᵀ' : ''}`, c: stored([], [], 17, 33, 11, tA, tB), bias: false })),
      // tfjs-core's matMul gradient rejects broadcast batches on every backend ("gradient of input 'a' has shape …").
      ...transposes.map(([tA, tB]) => ({ what: `batch 3${tA ? ', Aᵀ' : ''}${tB ? ', Bᵀ' : ''}`, c: stored([3], [3], 5, 6, 7, tA, tB), bias: false })),
      { what: 'fused, bias [n]', c: stored([], [], 9, 300, 10, false, false), bias: true },
    ];
    for (const { what, c, bias: withBias } of gradCases) {
      it(`${what}: every gradient within γ of float64 and of the cpu backend`, async () => {
        const next = rng(seed ^ 0x96ad);
        const a = randomArray(size(c.aShape), next);
        const b = randomArray(size(c.bShape), next);
        const n = c.transposeB ? c.bShape[c.bShape.length - 2] : c.bShape[c.bShape.length - 1];
        const bias = withBias ? randomArray(n, next) : null;
        const ref = gradReference(c, a, b, new Float32Array(0), withBias);
        const g = randomArray(size(ref.shape), next);
        const { grads } = gradReference(c, a, b, g, withBias);
        const ours = await gradsOn('wasm', c, a, b, g, ref.shape, bias);
        const cpu = await gradsOn('cpu', c, a, b, g, ref.shape, bias);
        grads.forEach(({ want, bound }, t) => {
          for (let i = 0; i < want.length; i++) {
            const err = Math.abs(ours[t][i] - want[i]);
            if (!(err <= bound[i])) expect.fail(`gradient ${t}, element ${i}: ours ${ours[t][i]}, float64 ${want[i]}, error ${err} > ${bound[i]}`);
            if (!(Math.abs(ours[t][i] - cpu[t][i]) <= 2 * bound[i])) expect.fail(`gradient ${t}, element ${i}: ours ${ours[t][i]}, cpu ${cpu[t][i]}`);
          }
        });
      });
    }

    it('a small tanh MLP with softmax cross-entropy: variableGrads on wasm (ours) and cpu agree', async () => {
      const next = rng(seed ^ 0x31f);
      const [batch, din, hidden, classes] = [16, 12, 20, 8];
      const values = [randomArray(batch * din, next), randomArray(din * hidden, next, 0.5), randomArray(hidden, next, 0.1), randomArray(hidden * classes, next, 0.5), randomArray(classes, next, 0.1)];
      const labels = Int32Array.from({ length: batch }, () => Math.floor(next() * classes));
      const grads = async (backend: 'wasm' | 'cpu'): Promise<Float32Array[]> => {
        await tf.setBackend(backend);
        try {
          return tf.tidy(() => {
            const [x, w1, b1, w2, b2] = [tf.tensor2d(values[0], [batch, din]), tf.tensor2d(values[1], [din, hidden]), tf.tensor1d(values[2]), tf.tensor2d(values[3], [hidden, classes]), tf.tensor1d(values[4])];
            const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
            const loss = (p: TF.Tensor[]) => tf.losses.softmaxCrossEntropy(y, tf.fused.matMul({ a: tf.tanh(tf.fused.matMul({ a: x, b: p[0], bias: p[1] })), b: p[2], bias: p[3] })) as TF.Scalar;
            return tf.grads((...p: TF.Tensor[]) => loss(p))([w1, b1, w2, b2]).map((t) => t.dataSync() as Float32Array);
          });
        } finally {
          await tf.setBackend('wasm');
        }
      };
      const [ours, cpu] = [await grads('wasm'), await grads('cpu')];
      // Each gradient is at most three chained float32 inner products of ≤ 21 terms (γ₂₁ ≈ 1.3e-6 each) plus
      // tanh and softmax, which the two backends round differently by a few ulps: 1e-5 normwise covers it.
      ours.forEach((g, t) => {
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < g.length; i++) {
          diff = Math.max(diff, Math.abs(g[i] - cpu[t][i]));
          scale = Math.max(scale, Math.abs(cpu[t][i]));
        }
        expect(scale, `gradient ${t} is not all zero`).to.be.greaterThan(0);
        expect(diff / scale, `gradient ${t} normwise`).to.be.below(1e-5);
      });
    });
  });

  it('a worker thread registers the same flavor and computes the same bits', async () => {
    const { flavor } = registerWasmKernels(tf);
    const next = rng(seed ^ 0x7ead);
    const job = { a: randomArray(64 * 300, next), aShape: [300, 64], b: randomArray(300 * 40, next), bShape: [40, 300], transposeA: true, transposeB: true };
    const here = tf.tidy(() => tf.matMul(tf.tensor(job.a, job.aShape), tf.tensor(job.b, job.bShape), true, true).dataSync() as Float32Array);
    const there = await new Promise<{ backend: string; flavor: string; out: Float32Array }>((resolve, reject) => {
      const worker = new Worker(new URL('./fixtures/matmul-worker.js', import.meta.url), { workerData: job });
      worker.once('message', (m: { backend: string; flavor: string; out: Float32Array }) => void worker.terminate().then(() => resolve(m)));
      worker.once('error', reject);
    });
    expect(there.backend).to.equal('wasm');
    expect(there.flavor).to.equal(flavor);
    expect(Buffer.from(there.out.buffer).equals(Buffer.from(here.buffer))).to.equal(true);
  });
});
