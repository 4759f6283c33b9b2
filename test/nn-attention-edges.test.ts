// Causal self-attention's edges (src/nn/attention.ts): causality bit for bit (changing q, k, v at positions
// ≥ i leaves out, att and lse at positions < i untouched in every mode; changing dout there leaves dq at
// positions < i untouched); large scores (|q·k/√d| past 88, where exp overflows float32 without the max
// subtracted) stay finite and within the float64 bound; and bad input, each refused in one line naming it.

import { expect } from 'chai';
import { attentionBackward, attentionForward, attentionScratchBytes, type AttentionSaved } from '../src/nn/attention.js';
import { Program } from '../src/nn/program.js';
import { AttentionArena, bits, expectWithin, type Kind } from './nn-attention-harness.js';
import { refAttentionBackward, refAttentionForward, type AttentionShape } from './nn-reference-attention.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();

/** Rows [from, T) of every batch of a [B, T, width] tensor at p, replaced by fresh random values. */
function redrawRows(a: AttentionArena, p: number, width: number, from: number, next: () => number): void {
  const { B, T } = a.s;
  for (let b = 0; b < B; b++) a.view(p + 4 * (b * T + from) * width, (T - from) * width).set(randomArray((T - from) * width, next));
}

/** Rows [0, until) of each (b or unit) slab of `per` rows × width, as bits. */
function leadingRows(x: Float32Array, slabs: number, per: number, width: number, until: number): string {
  let out = '';
  for (let s = 0; s < slabs; s++) out += bits(x.subarray(s * per * width, (s * per + until) * width));
  return out;
}

/** dq at positions [from, to) of every batch, as bits. */
function dqRows(dqkv: Float32Array, s: AttentionShape, from: number, to: number): string {
  let out = '';
  for (let b = 0; b < s.B; b++) {
    for (let r = from; r < to; r++) out += bits(dqkv.subarray((b * s.T + r) * 3 * s.C, (b * s.T + r) * 3 * s.C + s.C));
  }
  return out;
}

describe(`nn attention: causality, large scores, bad input (seed ${seed})`, () => {
  const causal: AttentionShape[] = [
    { B: 2, T: 5, C: 6, heads: 2 },
    { B: 1, T: 130, C: 48, heads: 3 },
  ];
  for (const s of causal) {
    const { B, T, C, heads } = s;
    for (const kind of ['probs', 'lse', 'none'] as const) {
      it(`changing q, k, v at positions ≥ i leaves every earlier position bit for bit (T ${T}, heads ${heads}, B ${B}, '${kind}', 2 members)`, () => {
        const next = rng(seed ^ (T * 31 + heads));
        const a = new AttentionArena(s);
        const base = randomArray(B * T * 3 * C, next);
        const positions = T === 5 ? [1, 2, 3, 4] : [1, 63, 64, 65, 127, 128, 129];
        for (const i of positions) {
          a.view(a.qkv, base.length).set(base);
          const before = a.forward(kind, 2);
          redrawRows(a, a.qkv, 3 * C, i, next);
          const after = a.forward(kind, 2);
          expect(leadingRows(after.out, B, T, C, i), `out before position ${i}`).to.equal(leadingRows(before.out, B, T, C, i));
          if (kind === 'probs') expect(leadingRows(after.att!, B * heads, T, T, i), `att before ${i}`).to.equal(leadingRows(before.att!, B * heads, T, T, i));
          if (kind === 'lse') expect(leadingRows(after.lse!, B * heads, T, 1, i), `lse before ${i}`).to.equal(leadingRows(before.lse!, B * heads, T, 1, i));
          // …while position i itself moves: the test would pass vacuously otherwise.
          expect(bits(after.out.subarray(i * C, (i + 1) * C)), `out at ${i}`).to.not.equal(bits(before.out.subarray(i * C, (i + 1) * C)));
        }
      });
    }
    it(`changing dout at positions ≥ i leaves dq at every earlier position bit for bit (T ${T}, heads ${heads}, B ${B})`, () => {
      const next = rng(seed ^ (T * 37 + heads));
      const a = new AttentionArena(s);
      a.view(a.qkv, B * T * 3 * C).set(randomArray(B * T * 3 * C, next));
      for (const i of T === 5 ? [1, 3] : [1, 64, 100]) {
        a.view(a.dout, B * T * C).set(randomArray(B * T * C, rng(seed ^ i)));
        const before = a.backward('lse', 2);
        redrawRows(a, a.dout, C, i, next);
        const after = a.backward('lse', 2);
        expect(dqRows(after, s, 0, i), `dq before position ${i}`).to.equal(dqRows(before, s, 0, i));
        expect(dqRows(after, s, i, i + 1), `dq at position ${i}`).to.not.equal(dqRows(before, s, i, i + 1));
      }
    });
  }

  for (const [d, heads] of [[1, 2], [16, 2], [64, 1]] as const) {
    it(`large scores (|q·k|/√d up to ~150, d ${d}) stay finite and within the float64 bound, forward and backward`, () => {
      const s: AttentionShape = { B: 1, T: 64, C: d * heads, heads };
      const { B, T, C } = s;
      const next = rng(seed ^ (d * 101));
      const a = new AttentionArena(s);
      // q, k uniform in [−A, A): a score q·k/√d has standard deviation A²/3 whatever d, 48 for A = 12, so the
      // largest of a row's scores are well past 88.7 (where exp overflows float32) and the smallest past −104.
      const A = 12;
      const qkv = a.view(a.qkv, B * T * 3 * C);
      qkv.set(randomArray(B * T * 3 * C, next));
      for (let r = 0; r < B * T; r++) for (let c = 0; c < 2 * C; c++) qkv[r * 3 * C + c] = Math.fround(qkv[r * 3 * C + c] * A);
      a.view(a.dout, B * T * C).set(randomArray(B * T * C, next));
      const q64 = qkv.slice();
      const ref = refAttentionForward(q64, s);
      let largest = 0;
      for (const x of ref.lse) largest = Math.max(largest, Math.abs(x));
      expect(largest - Math.log(T), 'some score is past exp’s float32 range (lse ≤ max + ln T)').to.be.above(88.8);
      for (const kind of ['probs', 'lse'] as const) {
        const f = a.forward(kind, 1);
        expect(f.out.every(Number.isFinite), 'out finite').to.equal(true);
        expectWithin(`out (${kind})`, f.out, ref.out, ref.outBound);
        const g = a.backward(kind, 1);
        expect(g.every(Number.isFinite), 'dqkv finite').to.equal(true);
        const back = refAttentionBackward(q64, a.view(a.dout, B * T * C).slice(), s, ref);
        expectWithin(`dqkv (${kind})`, g, back.dqkv, back.bound);
      }
    });
  }

  describe('bad input: one line naming what is wrong', () => {
    const s: AttentionShape = { B: 2, T: 8, C: 8, heads: 2 };
    const a = new AttentionArena(s);
    const { B, T, C, heads } = s;
    const fwd = (saved: AttentionSaved, over: Partial<{ out: number; qkv: number; B: number; T: number; C: number; heads: number }> = {}) => () =>
      attentionForward(new Program(), a.k, over.out ?? a.out, saved, over.qkv ?? a.qkv, over.B ?? B, over.T ?? T, over.C ?? C, over.heads ?? heads);
    const probs: AttentionSaved = { kind: 'probs', att: a.att };
    const bytes = a.memory.buffer.byteLength;
    const table: [string, () => void, RegExp][] = [
      ['C not a multiple of heads', fwd(probs, { C: 10, heads: 4 }), /^attentionForward: C = 10 is not a multiple of heads = 4$/],
      ['B = 0', fwd(probs, { B: 0 }), /^attentionForward: B must be a positive integer, got 0$/],
      ['T = 1.5', fwd(probs, { T: 1.5 }), /^attentionForward: T must be a positive integer, got 1.5$/],
      ['heads = -1', fwd(probs, { heads: -1 }), /^attentionForward: heads must be a positive integer, got -1$/],
      ['qkv not float-aligned', fwd(probs, { qkv: a.qkv + 2 }), /^attentionForward: qkv must be a 4-byte aligned byte offset, got \d+$/],
      ['out past the memory', fwd(probs, { out: bytes - 16 }), new RegExp(`^attentionForward: out \\(128 floats at byte ${bytes - 16}\\) runs past the memory's ${bytes} bytes$`)],
      ['att past the memory', fwd({ kind: 'probs', att: bytes - 4 }), /^attentionForward: saved.att \(256 floats at byte \d+\) runs past the memory's \d+ bytes$/],
      ['an unknown saved kind', fwd({ kind: 'logits' } as unknown as AttentionSaved), /^attentionForward: saved.kind must be 'probs', 'lse' or 'none', got logits$/],
      ['a backward from nothing saved', () => attentionBackward(new Program(), a.k, a.dqkv, a.dout, a.qkv, { kind: 'none' }, B, T, C, heads),
        /^attentionBackward: saved.kind 'none' keeps nothing to differentiate; run the forward with 'probs' or 'lse'$/],
      ['dout past the memory', () => attentionBackward(new Program(), a.k, a.dqkv, bytes, a.qkv, { kind: 'lse', lse: a.lse }, B, T, C, heads),
        /^attentionBackward: dout \(128 floats at byte \d+\) runs past the memory's \d+ bytes$/],
      ['a scratch too small for the T passed', () => attentionForward(new Program(), { ...a.k, scratchBytes: a.k.scratchBytes - attentionScratchBytes(130, C, heads, 'lse', 'backward') }, a.out, { kind: 'lse', lse: a.lse }, a.qkv, B, T, C, heads),
        /^attentionForward: each member's scratch is \d+ bytes, it needs \d+ \(the GEMM's \d+ \+ attentionScratchBytes 256\)$/],
      ['attentionScratchBytes of an unknown kind', () => attentionScratchBytes(8, 8, 2, 'all' as Kind, 'forward'), /^attentionScratchBytes: kind must be 'probs', 'lse' or 'none', got all$/],
      ['attentionScratchBytes of an unknown pass', () => attentionScratchBytes(8, 8, 2, 'lse', 'both' as 'forward'), /^attentionScratchBytes: pass must be 'forward' or 'backward', got both$/],
      ['attentionScratchBytes of a backward from nothing', () => attentionScratchBytes(8, 8, 2, 'none', 'backward'), /^attentionScratchBytes: kind 'none' keeps nothing for a backward pass$/],
    ];
    for (const [what, run, message] of table) {
      it(what, () => expect(run).to.throw(RangeError, message));
    }
  });
});
