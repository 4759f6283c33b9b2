// Our WebAssembly GEMM on a memory of its own (no tfjs): both binaries (relaxed-SIMD FMA and plain mul + add)
// against a float64 reference, on shapes that hit every edge of the blocking (1-wide, k = 0, partial tiles,
// several k slabs, several row blocks, several column blocks), all four transposes, each bias mode and
// in-kernel activation. C is poisoned with NaN before every call and fenced with sentinels, so an element
// left unwritten or a store outside C fails. Fresh random inputs every run (SHARDTRAIN_SEED=… replays).
//
// Tolerance: a float32 inner product of n terms, summed in any order, with or without fused multiply-adds,
// is within γₙ·Σ|terms| of the exact value (γₙ = n·u/(1 − n·u), u = 2⁻²⁴; Higham, Accuracy and Stability of
// Numerical Algorithms, §3.1). Here n = k + 1: the k products and the bias. relu and relu6 are 1-Lipschitz;
// leaky relu (α ≤ 1) too, plus one rounding of α·x.

import { expect } from 'chai';
import { Gemm, type Allocator, type GemmActivation, type GemmCall } from '../src/kernels/gemm.js';
import { compileModule, resolveFlavor, type SimdFlavor } from '../src/kernels/wasm-modules.js';
import { freshSeed, randomArray, rng } from './reference.js';

const u = 2 ** -24;
const seed = freshSeed();
const kGuard = 16;

/** A bump allocator over a fresh memory: free() is a no-op, so the count of malloc calls is the scratch's history. */
function testMemory(bytes: number): { memory: WebAssembly.Memory; allocator: Allocator & { calls: number }; alloc(floats: number): number } {
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) + 1 });
  let top = 64;
  const bump = (n: number): number => {
    const at = (top + 15) & ~15;
    top = at + n;
    if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
    return at;
  };
  const allocator = { calls: 0, malloc: (n: number) => (allocator.calls++, bump(n)), free: () => undefined };
  return { memory, allocator, alloc: (floats) => bump(4 * floats) };
}

interface Case {
  m: number;
  n: number;
  k: number;
  transposeA: boolean;
  transposeB: boolean;
  bias: 'none' | 'n' | 1;
  activation: GemmActivation;
  alpha: number;
}

/** Run one case on `flavor`; returns C and the float64 reference with its bound, after checking poison and fences. */
function runCase(flavor: SimdFlavor, c: Case, next: () => number): { got: Float32Array; want: Float64Array; bound: Float64Array } {
  const { m, n, k } = c;
  const env = testMemory(4 * (m * k + k * n + m * n + n + 4 * kGuard) + (1 << 22));
  const aAt = env.alloc(m * k);
  const bAt = env.alloc(k * n);
  const biasAt = env.alloc(Math.max(n, 1));
  const fenceAt = env.alloc(m * n + 2 * kGuard);
  const cAt = fenceAt + 4 * kGuard;
  const heap = new Float32Array(env.memory.buffer);
  const a = randomArray(m * k, next);
  const b = randomArray(k * n, next);
  const bias = randomArray(Math.max(n, 1), next);
  heap.set(a, aAt / 4);
  heap.set(b, bAt / 4);
  heap.set(bias, biasAt / 4);
  heap.fill(NaN, cAt / 4, cAt / 4 + m * n);
  heap.fill(12345, fenceAt / 4, cAt / 4);
  heap.fill(12345, cAt / 4 + m * n, cAt / 4 + m * n + kGuard);
  const call: GemmCall = {
    m, n, k, a: aAt, transposeA: c.transposeA, b: bAt, transposeB: c.transposeB, c: cAt,
    bias: c.bias === 'none' ? undefined : { address: biasAt, size: c.bias },
    activation: c.activation, alpha: c.alpha,
  };
  new Gemm(env.memory, env.allocator, flavor).run(call);
  const after = new Float32Array(env.memory.buffer);
  for (let g = 0; g < kGuard; g++) {
    expect(after[fenceAt / 4 + g], 'store before C').to.equal(12345);
    expect(after[cAt / 4 + m * n + g], 'store after C').to.equal(12345);
  }
  const want = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  const gamma = ((k + 1) * u) / (1 - (k + 1) * u);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = c.bias === 'none' ? 0 : c.bias === 1 ? bias[0] : bias[j];
      let abs = Math.abs(s);
      for (let p = 0; p < k; p++) {
        const x = a[c.transposeA ? p * m + i : i * k + p] * b[c.transposeB ? j * k + p : p * n + j];
        s += x;
        abs += Math.abs(x);
      }
      let e = gamma * abs;
      if (c.activation === 'relu') s = Math.max(s, 0);
      else if (c.activation === 'relu6') s = Math.min(Math.max(s, 0), 6);
      else if (c.activation === 'leakyrelu' && s < 0) {
        s *= c.alpha;
        e = e * Math.abs(c.alpha) + u * (Math.abs(s) + e);
      }
      want[i * n + j] = s;
      bound[i * n + j] = e;
    }
  }
  return { got: after.slice(cAt / 4, cAt / 4 + m * n), want, bound };
}

function expectWithin(got: Float32Array, want: Float64Array, bound: Float64Array, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= bound[i])) expect.fail(`${what}: element ${i} = ${got[i]}, float64 ${want[i]}, error ${err} > bound ${bound[i]}`);
  }
}

const transposes: ReadonlyArray<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];
// Edges of the 4×8 tile and of the KC = 256, MC = 128, NC = 2048 blocking.
const shapes: ReadonlyArray<[number, number, number]> = [
  [1, 1, 1], [1, 7, 3], [5, 1, 9], [3, 5, 0], [4, 8, 16], [17, 9, 33], [130, 19, 257], [33, 2049, 3], [129, 65, 513], [0, 5, 3], [5, 0, 3],
];

for (const flavor of ['relaxed', 'plain'] as const) {
  describe(`GEMM (${flavor === 'relaxed' ? 'relaxed-SIMD FMA' : 'plain mul + add'}), seed ${seed}`, () => {
    before(function () {
      if (flavor === 'relaxed' && compileModule('gemm-relaxed') instanceof Error) this.skip();
    });

    for (const [m, n, k] of shapes) {
      for (const [transposeA, transposeB] of transposes) {
        it(`${m}×${k} · ${k}×${n}${transposeA ? ', Aᵀ' : ''}${transposeB ? ', Bᵀ' : ''}: every element written, within γ(k+1) of float64`, () => {
          const next = rng(seed ^ (m * 7919 + n * 104729 + k * 31 + (transposeA ? 1 : 0) + (transposeB ? 2 : 0)));
          const { got, want, bound } = runCase(flavor, { m, n, k, transposeA, transposeB, bias: 'none', activation: 'linear', alpha: 0 }, next);
          expectWithin(got, want, bound, `${m}×${k}×${n}`);
        });
      }
    }

    for (const bias of ['none', 'n', 1] as const) {
      for (const activation of ['linear', 'relu', 'relu6', 'leakyrelu'] as const) {
        it(`bias ${bias === 'n' ? 'per column' : bias === 1 ? 'scalar' : 'none'}, ${activation}: on a 2-slab, edge-tiled shape`, () => {
          const next = rng(seed ^ 0xb1a5);
          const c: Case = { m: 37, n: 29, k: 300, transposeA: next() < 0.5, transposeB: next() < 0.5, bias, activation, alpha: 0.3 };
          const { got, want, bound } = runCase(flavor, c, next);
          expectWithin(got, want, bound, `${bias}/${activation}`);
        });
      }
    }

    it('k = 0 gives act(bias) in every element (no product to sum)', () => {
      const { got } = runCase(flavor, { m: 6, n: 11, k: 0, transposeA: false, transposeB: false, bias: 1, activation: 'relu6', alpha: 0 }, () => 0.999);
      expect([...new Set(got)]).to.deep.equal([Math.fround(Math.min(Math.max(0.998, 0), 6))]);
    });

    it('same inputs, same bits, whatever ran before; scratch grows only for a bigger shape', () => {
      const env = testMemory(1 << 24);
      const gemm = new Gemm(env.memory, env.allocator, flavor);
      const next = rng(seed ^ 0xd37);
      const [m, n, k] = [45, 70, 300];
      const aAt = env.alloc(m * k);
      const bAt = env.alloc(k * n);
      const cAt = env.alloc(m * n);
      const big = { a: env.alloc(200 * 400), b: env.alloc(400 * 300), c: env.alloc(200 * 300) };
      new Float32Array(env.memory.buffer).set(randomArray(m * k, next), aAt / 4);
      new Float32Array(env.memory.buffer).set(randomArray(k * n, next), bAt / 4);
      const call: GemmCall = { m, n, k, a: aAt, transposeA: true, b: bAt, transposeB: false, c: cAt };
      gemm.run(call);
      const first = new Float32Array(env.memory.buffer).slice(cAt / 4, cAt / 4 + m * n);
      expect(env.allocator.calls).to.equal(1);
      gemm.run({ m: 200, n: 300, k: 400, a: big.a, transposeA: false, b: big.b, transposeB: true, c: big.c });
      expect(env.allocator.calls).to.equal(2);
      gemm.run(call);
      gemm.run(call);
      expect(env.allocator.calls, 'no allocation for shapes that fit').to.equal(2);
      const again = new Float32Array(env.memory.buffer).slice(cAt / 4, cAt / 4 + m * n);
      expect(Buffer.from(again.buffer).equals(Buffer.from(first.buffer))).to.equal(true);
    });
  });
}

describe('GEMM flavors', () => {
  it("'auto' takes relaxed SIMD where the runtime validates it, and 'plain' is always there", () => {
    const relaxed = !(compileModule('gemm-relaxed') instanceof Error);
    expect(resolveFlavor('auto')).to.equal(relaxed ? 'relaxed' : 'plain');
    expect(resolveFlavor('plain')).to.equal('plain');
  });

  it('relaxed rounds each multiply-add once, plain twice (a hand-worked 1×2 · 2×1 case)', function () {
    if (compileModule('gemm-relaxed') instanceof Error) this.skip();
    // a·b = (−(1 + 2⁻¹¹))·1 + (1 + 2⁻¹²)·(1 + 2⁻¹²) = 2⁻²⁴ exactly. The second product is 1 + 2⁻¹¹ + 2⁻²⁴:
    // rounded alone (plain) its 2⁻²⁴ is half an ulp of 1 and goes (ties to even), leaving 0; fused, it stays.
    const results = (['relaxed', 'plain'] as const).map((flavor) => {
      const env = testMemory(1 << 16);
      const [aAt, bAt, cAt] = [env.alloc(2), env.alloc(2), env.alloc(1)];
      const heap = new Float32Array(env.memory.buffer);
      heap.set([-(1 + 2 ** -11), 1 + 2 ** -12], aAt / 4);
      heap.set([1, 1 + 2 ** -12], bAt / 4);
      new Gemm(env.memory, env.allocator, flavor).run({ m: 1, n: 1, k: 2, a: aAt, transposeA: false, b: bAt, transposeB: false, c: cAt });
      return new Float32Array(env.memory.buffer)[cAt / 4];
    });
    expect(results[1], 'plain').to.equal(0);
    // V8 lowers relaxed_madd to a real FMA only where the CPU has one (x64 FMA3, arm64).
    if (results[0] === 0) this.skip();
    expect(results[0], 'relaxed').to.equal(2 ** -24);
  });
});
