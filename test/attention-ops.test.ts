// The row kernels of causal attention (src/kernels/attention-ops.ts, wasm/attention.wat.mjs) against float64
// on blocks that hit every edge: one row, odd widths, every tail length (n mod 4), live entries followed by
// masked ones, rows longer than a cache block, row strides wider than the rows. The masked entries [n, width)
// are poisoned with NaN (they must be written as zeros and never read), the stride's slack and the regions
// around each buffer hold sentinels that must stay untouched. Scores up to ±300 stay finite (the max is
// subtracted). Fresh random inputs each run (SHARDTRAIN_SEED=… replays).
//
// Bounds (test/nn-reference-attention.ts softmaxRowBounds): the inputs are float32 values the reference
// uses exactly, so a score x = scale·s is off only by the kernel's one rounding, E = u·|x|. The softmax
// backward: D = Σ p·dp in four lanes (γ_{n+1}·Σ|p·dp|), then fl(fl(p·fl(dp − D))·scale): three roundings.

import { expect } from 'chai';
import { AttentionOps } from '../src/kernels/attention-ops.js';
import { gamma, kTinyProb, softmaxRowBounds, u, worst } from './nn-reference-attention.js';

const worstRatio = (got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>): number => worst(got, want, bound).ratio;
import { freshSeed, rng } from './reference.js';

const seed = freshSeed();
const kFence = 16;
const kSentinel = 1234.5;

interface Block {
  readonly rows: number;
  readonly first: number;
  readonly width: number;
  readonly ld: number;
}

const blocks: readonly Block[] = [
  { rows: 1, first: 0, width: 1, ld: 1 },
  { rows: 3, first: 0, width: 3, ld: 5 },
  { rows: 5, first: 2, width: 9, ld: 9 },
  { rows: 7, first: 60, width: 70, ld: 73 },
  { rows: 64, first: 0, width: 64, ld: 64 },
  { rows: 4, first: 126, width: 130, ld: 131 },
  { rows: 3, first: 1500, width: 1503, ld: 1504 },
];

/** A memory with fenced regions: region(floats) returns the byte offset of `floats` floats between sentinels. */
function fencedMemory(floats: number): { memory: WebAssembly.Memory; f32: Float32Array; region(n: number): number; fencesIntact(): void } {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((4 * (floats + 64 * kFence) + 4096) / 65536) + 1 });
  const f32 = new Float32Array(memory.buffer);
  const regions: [number, number][] = [];
  let at = 64;
  return {
    memory,
    f32,
    region(n) {
      f32.fill(kSentinel, at / 4, at / 4 + n + 2 * kFence);
      const p = at + 4 * kFence;
      regions.push([p, n]);
      at = (p + 4 * (n + kFence) + 15) & ~15;
      return p;
    },
    fencesIntact() {
      for (const [p, n] of regions) {
        for (let f = 0; f < kFence; f++) {
          expect(f32[p / 4 - kFence + f], `fence before byte ${p}`).to.equal(kSentinel);
          expect(f32[p / 4 + n + f], `fence after byte ${p}`).to.equal(kSentinel);
        }
      }
    },
  };
}

describe(`attention row kernels: softmax rows, their lse, the rebuild from lse, the softmax backward (seed ${seed})`, () => {
  for (const b of blocks) {
    for (const [d, magnitude] of [[1, 1], [3, 8], [64, 3], [1, 300], [16, 600]] as const) {
      const scale = Math.fround(1 / Math.sqrt(d));
      it(`${b.rows} rows from position ${b.first}, width ${b.width}, stride ${b.ld}, scale 1/√${d}, scores up to ±${magnitude * scale | 0}`, () => {
        const next = rng(seed ^ (b.first * 7919 + b.width * 31 + d * 1009 + magnitude));
        const { rows, first, width, ld } = b;
        const m = fencedMemory(4 * rows * ld + 2 * rows);
        const ops = new AttentionOps(m.memory);
        const s = m.region(rows * ld);
        const lse = m.region(rows);
        const rebuilt = m.region(rows * ld);
        const dp = m.region(rows * ld);
        const at = (base: number, r: number, j: number) => base / 4 + r * ld + j;
        // Raw scores in [−magnitude, magnitude) on the live entries, NaN on the masked ones, sentinels in the slack.
        const raw = new Float32Array(rows * ld);
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < ld; j++) raw[r * ld + j] = j < first + r + 1 ? (2 * next() - 1) * magnitude : j < width ? Number.NaN : kSentinel;
        }
        m.f32.set(raw, s / 4);
        m.f32.set(raw, rebuilt / 4);
        ops.softmaxRows(s, ld, rows, first, width, scale, lse);
        const probs = m.f32.slice(s / 4, s / 4 + rows * ld);
        for (let r = 0; r < rows; r++) {
          const n = first + r + 1;
          const x = Float64Array.from({ length: n }, (_, j) => scale * raw[r * ld + j]);
          const max = Math.max(...x);
          const total = x.reduce((acc, v) => acc + Math.exp(v - max), 0);
          const X = Math.max(...x.map(Math.abs));
          const bounds = softmaxRowBounds(u * X, X * (1 + u), n);
          const want = x.map((v) => Math.exp(v - max) / total);
          const got = probs.subarray(r * ld, r * ld + n);
          expect(worstRatio(got, want, want.map((p) => p * bounds.eta + kTinyProb)), `row ${r}: probabilities / bound`).to.be.at.most(1);
          expect(worstRatio([m.f32[lse / 4 + r]], [max + Math.log(total)], [bounds.lse]), `row ${r}: lse / bound`).to.be.at.most(1);
          for (let j = n; j < ld; j++) expect(probs[r * ld + j], `row ${r}, entry ${j}`).to.equal(j < width ? 0 : kSentinel);
        }
        // Without an lse slot: the same probabilities, nothing written at lse.
        m.f32.set(raw, s / 4);
        m.f32.fill(kSentinel, lse / 4, lse / 4 + rows);
        const keptLse = m.f32.slice(lse / 4, lse / 4 + rows);
        ops.softmaxRows(s, ld, rows, first, width, scale, null);
        expect(Buffer.from(m.f32.buffer, s, 4 * rows * ld).equals(Buffer.from(probs.buffer)), 'probabilities without lse').to.equal(true);
        expect(Array.from(m.f32.subarray(lse / 4, lse / 4 + rows))).to.deep.equal(Array.from(keptLse));
        // The rebuild from an lse gives the forward's bits (the lse of the first call).
        m.f32.set(raw, s / 4);
        ops.softmaxRows(s, ld, rows, first, width, scale, lse);
        ops.probsRows(rebuilt, ld, rows, first, width, scale, lse);
        expect(Buffer.from(m.f32.buffer, rebuilt, 4 * rows * ld).equals(Buffer.from(probs.buffer)), 'probsRows vs softmaxRows').to.equal(true);

        // The backward on those probabilities, their masked entries NaN again (never read).
        const p = probs.slice();
        const dpIn = new Float32Array(rows * ld);
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < ld; j++) {
            const live = j < first + r + 1;
            if (!live && j < width) p[r * ld + j] = Number.NaN;
            dpIn[r * ld + j] = live ? 2 * next() - 1 : j < width ? Number.NaN : kSentinel;
          }
        }
        m.f32.set(p, s / 4);
        m.f32.set(dpIn, dp / 4);
        ops.softmaxBackwardRows(s, ld, dp, ld, rows, first, width, scale);
        for (let r = 0; r < rows; r++) {
          const n = first + r + 1;
          let D = 0;
          let mass = 0;
          for (let j = 0; j < n; j++) {
            D += p[r * ld + j] * dpIn[r * ld + j];
            mass += Math.abs(p[r * ld + j] * dpIn[r * ld + j]);
          }
          const dBound = gamma(n + 1) * mass;
          const want = new Float64Array(n);
          const bound = new Float64Array(n);
          for (let j = 0; j < n; j++) {
            const g = dpIn[r * ld + j] - D;
            const gBound = dBound + u * (Math.abs(g) + dBound);
            want[j] = p[r * ld + j] * g * scale;
            bound[j] = scale * p[r * ld + j] * (gBound + 2.01 * u * (Math.abs(g) + gBound)) + 2 ** -149;
          }
          expect(worstRatio(m.f32.subarray(at(dp, r, 0), at(dp, r, n)), want, bound), `row ${r}: ds / bound`).to.be.at.most(1);
          for (let j = n; j < ld; j++) expect(m.f32[at(dp, r, j)], `ds row ${r}, entry ${j}`).to.equal(j < width ? 0 : kSentinel);
        }
        expect(Buffer.from(m.f32.buffer, s, 4 * rows * ld).equals(Buffer.from(p.buffer)), 'p is read only').to.equal(true);
        m.fencesIntact();
      });
    }
  }

  it('refuses a block whose rows run past its width or its width past the stride, in one line', () => {
    const ops = new AttentionOps(new WebAssembly.Memory({ initial: 1 }));
    expect(() => ops.softmaxRows(0, 8, 4, 6, 8, 1, null)).to.throw(RangeError, /attention softmaxRows: rows 6…9 need width ≥ 10 ≤ row stride, got width 8, stride 8$/);
    expect(() => ops.probsRows(0, 4, 1, 0, 5, 1, 64)).to.throw(RangeError, /probsRows: .* got width 5, stride 4$/);
    expect(() => ops.softmaxBackwardRows(0, 8, 64, 3, 1, 0, 4, 1)).to.throw(RangeError, /softmaxBackwardRows: .* got width 4, stride 3$/);
  });
});
