// The engine's GEMM entry (src/kernels/matmul.ts): strided operands, C = or += A·B + bias, and one member's
// share of C. Against a float64 reference within γ(k+1)·Σ|terms| (as test/gemm.test.ts), C poisoned with NaN
// and fenced with sentinels; every split of C over 1, 2 and 3 members gives the same bits as the whole.

import { expect } from 'chai';
import { Matmul, type MatmulCall } from '../src/kernels/matmul.js';
import { resolveFlavor } from '../src/kernels/wasm-modules.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();
const u = 2 ** -24;
const kFence = 16;
const kSentinel = 1234.5;

interface Setup {
  memory: WebAssembly.Memory;
  f32: Float32Array;
  a: number;
  b: number;
  c: number;
  bias: number;
  scratch: number;
}

/** A (m×k, or k×m when transposed), B (k×n or n×k), C (m×ldc) with fences, bias, and 3 scratch areas. */
function setup(mm: Matmul, m: number, n: number, k: number, ldc: number, next: () => number): Setup {
  const floats = m * k + k * n + (m * ldc + 2 * kFence) + n + 64;
  const scratchBytes = mm.maxScratchBytes;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((floats * 4 + 3 * scratchBytes + 4096) / 65536) + 1 });
  const f32 = new Float32Array(memory.buffer);
  let at = 64;
  const take = (count: number) => {
    const p = at;
    at += 4 * count;
    at = (at + 15) & ~15;
    return p;
  };
  const a = take(m * k);
  const b = take(k * n);
  const fenced = take(m * ldc + 2 * kFence);
  const bias = take(n);
  const scratch = take(scratchBytes / 4 * 3);
  f32.set(randomArray(m * k, next), a / 4);
  f32.set(randomArray(k * n, next), b / 4);
  f32.set(randomArray(n, next), bias / 4);
  f32.fill(kSentinel, fenced / 4, fenced / 4 + m * ldc + 2 * kFence);
  return { memory, f32, a, b, c: fenced + 4 * kFence, bias, scratch };
}

function reference(s: Setup, call: MatmulCall, before: Float32Array): { want: Float64Array; bound: Float64Array } {
  const { m, n, k } = call;
  const want = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = call.bias === undefined ? 0 : s.f32[call.bias / 4 + j];
      let abs = Math.abs(sum);
      if (call.accumulate) {
        sum += before[i * call.ldc + j];
        abs += Math.abs(before[i * call.ldc + j]);
      }
      for (let kk = 0; kk < k; kk++) {
        const t = s.f32[call.a / 4 + i * call.rsA + kk * call.csA] * s.f32[call.b / 4 + kk * call.rsB + j * call.csB];
        sum += t;
        abs += Math.abs(t);
      }
      want[i * n + j] = sum;
      const g = (k + 2) * u / (1 - (k + 2) * u);
      bound[i * n + j] = g * abs + 1e-30;
    }
  }
  return { want, bound };
}

describe(`matmul: the engine's GEMM (seed ${seed})`, () => {
  const flavor = resolveFlavor('auto');
  const shapes = [
    { m: 1, n: 1, k: 1 },
    { m: 5, n: 13, k: 7 },
    { m: 37, n: 9, k: 300 },
    { m: 9, n: 70, k: 33 },
    { m: 130, n: 20, k: 17 },
  ];
  for (const shape of shapes) {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      for (const accumulate of [false, true]) {
        it(`${shape.m}×${shape.n}×${shape.k}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}${accumulate ? ' C +=' : ''}: float64 bound; 1, 2, 3 members give the same bits`, () => {
          const next = rng(seed ^ (shape.m * 7919 + shape.n * 104729 + shape.k));
          const mm = new Matmul(new WebAssembly.Memory({ initial: 1 }), flavor); // for the scratch size only
          const { m, n, k } = shape;
          const ldc = n + 3; // C inside a wider buffer: the columns past n must stay untouched
          for (const members of [1, 2, 3]) {
            const s = setup(mm, m, n, k, ldc, next);
            const kernel = new Matmul(s.memory, flavor);
            const call: MatmulCall = {
              m, n, k,
              a: s.a, rsA: transA ? 1 : k, csA: transA ? m : 1,
              b: s.b, rsB: transB ? 1 : n, csB: transB ? k : 1,
              c: s.c, ldc, bias: s.bias, accumulate,
            };
            const cAt = s.c / 4;
            const before = new Float32Array(m * ldc);
            for (let i = 0; i < m; i++) for (let j = 0; j < ldc; j++) before[i * ldc + j] = j < n ? (accumulate ? ((i * 31 + j) % 17) - 8 : Number.NaN) : kSentinel;
            s.f32.set(before, cAt);
            for (let member = 0; member < members; member++) kernel.runPart(call, member, members, s.scratch + member * (kernel.maxScratchBytes & ~15));
            const { want, bound } = reference(s, call, before);
            const got = new Float32Array(m * n);
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < ldc; j++) {
                const x = s.f32[cAt + i * ldc + j];
                if (j >= n) expect(x, `C(${i}, ${j}) past n`).to.equal(kSentinel);
                else got[i * n + j] = x;
              }
            }
            for (let f = 0; f < kFence; f++) {
              expect(s.f32[cAt - kFence + f], 'fence before C').to.equal(kSentinel);
              expect(s.f32[cAt + m * ldc + f], 'fence after C').to.equal(kSentinel);
            }
            let worst = 0;
            for (let i = 0; i < m * n; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / bound[i]);
            expect(worst, 'worst error / bound').to.be.at.most(1);
          }
          // The bits of every split, on one set of inputs:
          const s = setup(mm, m, n, k, ldc, rng(seed ^ 0xabc));
          const kernel = new Matmul(s.memory, flavor);
          const call: MatmulCall = { m, n, k, a: s.a, rsA: transA ? 1 : k, csA: transA ? m : 1, b: s.b, rsB: transB ? 1 : n, csB: transB ? k : 1, c: s.c, ldc, bias: s.bias, accumulate };
          const start = Float32Array.from({ length: m * ldc }, (_, i) => (accumulate ? (i % 13) - 6 : Number.NaN));
          const bits: string[] = [];
          for (const members of [1, 2, 3]) {
            s.f32.set(start, s.c / 4);
            for (let member = members - 1; member >= 0; member--) kernel.runPart(call, member, members, s.scratch);
            bits.push(Buffer.from(s.f32.buffer, s.c, 4 * m * ldc).toString('hex'));
          }
          expect(bits[1]).to.equal(bits[0]);
          expect(bits[2]).to.equal(bits[0]);
        });
      }
    }
  }

  it('refuses a scratch that is not 16-byte aligned', () => {
    const mm = new Matmul(new WebAssembly.Memory({ initial: 1 }), flavor);
    expect(() => mm.run({ m: 1, n: 1, k: 1, a: 0, rsA: 1, csA: 1, b: 4, rsB: 1, csB: 1, c: 8, ldc: 1 }, 20)).to.throw(/16-byte aligned/);
  });
});
