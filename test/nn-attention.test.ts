// Causal self-attention (src/nn/attention.ts), forward and backward, against float64
// (test/nn-reference-attention.ts: the definitions, with a bound per element from the float32 arithmetic)
// for every T in {1, 2, 5, 64, 130} (one block, a partial block, blocks of 64 and a last one of 2), d in
// {1, 3, 16, 64}, heads 1–4 and B 1–3; every output NaN-poisoned before a run and fenced with sentinels, qkv,
// dout and the saved tensor checked read only. In every case: 'probs', 'lse' and 'none' give the same forward
// bits and 'probs' and 'lse' the same backward bits, each with 1, 2 and 3 members (runSerial), and the
// probabilities above the diagonal are exact zeros. Then every dqkv element against central finite
// differences of the float64 forward (the loss Σ w·out, w random). The scratch is planned for T = 130 in
// every case: the layouts follow the T passed. Fresh random inputs each run (SHARDTRAIN_SEED=… replays).

import { expect } from 'chai';
import { AttentionArena, bits, expectWithin, kPlannedT, type Kind } from './nn-attention-harness.js';
import { refAttentionBackward, refAttentionForward, refUnitLoss, type AttentionShape } from './nn-reference-attention.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();
const caseSeed = (s: AttentionShape, salt: number) => seed ^ (s.T * 7919 + s.C * 104729 + s.heads * 1299709 + s.B * 15485863 + salt);

/** An arena with random qkv and dout in [−1, 1). */
function arenaFor(s: AttentionShape, next: () => number): AttentionArena {
  const a = new AttentionArena(s);
  a.view(a.qkv, s.B * s.T * 3 * s.C).set(randomArray(s.B * s.T * 3 * s.C, next));
  a.view(a.dout, s.B * s.T * s.C).set(randomArray(s.B * s.T * s.C, next));
  return a;
}

describe(`nn attention: causal multi-head self-attention against float64 (seed ${seed})`, () => {
  for (const T of [1, 2, 5, 64, 130]) {
    for (const d of [1, 3, 16, 64]) {
      for (const heads of [1, 2, 3, 4]) {
        for (const B of [1, 2, 3]) {
          const s: AttentionShape = { B, T, C: heads * d, heads };
          it(`T ${T}, d ${d}, heads ${heads}, B ${B}: float64 bounds; every mode and 1, 2, 3 members give the same bits`, () => {
            expect(T).to.be.at.most(kPlannedT);
            const a = arenaFor(s, rng(caseSeed(s, 0)));
            const qkv = a.view(a.qkv, B * T * 3 * s.C).slice();
            const dout = a.view(a.dout, B * T * s.C).slice();
            const ref = refAttentionForward(qkv, s);

            const forward = new Map<string, ReturnType<AttentionArena['forward']>>();
            for (const kind of ['probs', 'lse', 'none'] as const) {
              for (const members of [1, 2, 3]) forward.set(`${kind} ${members}`, a.forward(kind, members));
            }
            const first = forward.get('probs 1')!;
            expectWithin('out', first.out, ref.out, ref.outBound);
            expectWithin('att', first.att!, ref.probs, ref.probsBound); // bound 0 above the diagonal: exact zeros
            expectWithin('lse', forward.get('lse 1')!.lse!, ref.lse, ref.lseBound);
            for (const [run, got] of forward) {
              expect(bits(got.out), `out of ${run}`).to.equal(bits(first.out));
              if (got.att) expect(bits(got.att), `att of ${run}`).to.equal(bits(first.att!));
              if (got.lse) expect(bits(got.lse), `lse of ${run}`).to.equal(bits(forward.get('lse 1')!.lse!));
            }

            const back = refAttentionBackward(qkv, dout, s, ref);
            const dqkv = a.backward('probs', 1);
            expectWithin('dqkv', dqkv, back.dqkv, back.bound);
            for (const kind of ['probs', 'lse'] as const) {
              for (const members of kind === 'probs' ? [2, 3] : [1, 2, 3]) expect(bits(a.backward(kind, members)), `dqkv of ${kind} ${members}`).to.equal(bits(dqkv));
            }
          });
        }
      }
    }
  }

  // Every element's finite difference needs 4 evaluations of the rows it moves (one row for q, rows ≥ j for
  // k and v): affordable on these shapes, which still cross a block edge (T = 130) and reach d = 64.
  const fdShapes: AttentionShape[] = [
    { B: 1, T: 1, C: 1, heads: 1 },
    { B: 2, T: 2, C: 6, heads: 2 },
    { B: 1, T: 5, C: 48, heads: 3 },
    { B: 3, T: 5, C: 64, heads: 1 },
    { B: 1, T: 64, C: 32, heads: 2 },
    { B: 1, T: 130, C: 6, heads: 2 },
  ];
  for (const s of fdShapes) {
    const kind: Kind = s.T > 64 ? 'lse' : 'probs';
    it(`every dqkv element against central finite differences of the float64 forward: T ${s.T}, d ${s.C / s.heads}, heads ${s.heads}, B ${s.B} ('${kind}')`, () => {
      const { B, T, C, heads } = s;
      const d = C / heads;
      const a = arenaFor(s, rng(caseSeed(s, 1)));
      const qkv = Float64Array.from(a.view(a.qkv, B * T * 3 * C));
      const w = Float64Array.from(a.view(a.dout, B * T * C)); // the loss Σ w·out: dout = w
      const ref = refAttentionForward(qkv, s);
      const back = refAttentionBackward(qkv, w, s, ref);
      const got = a.backward(kind, 2);
      // Central differences at h and 2h (h a power of two: x ± h is exact). Their error is c·h² + rounding;
      // D(2h) − D(h) ≈ 3c·h², so |D(2h) − D(h)| bounds D(h)'s truncation with a factor 3 to spare, and each
      // float64 evaluation rounds by ≤ 2⁻⁵²·(terms)·Σ|w|·max|v|, divided by 2h.
      const h = 2 ** -12;
      let maxV = 0;
      for (let r = 0; r < B * T; r++) for (let c = 0; c < C; c++) maxV = Math.max(maxV, Math.abs(qkv[r * 3 * C + 2 * C + c]));
      let checked = 0;
      let largest = 0;
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < T; i++) {
          for (let col = 0; col < 3 * C; col++) {
            const e = (b * T + i) * 3 * C + col;
            const unit = b * heads + Math.floor((col % C) / d);
            const [r0, r1] = col < C ? [i, i + 1] : [i, T];
            const loss = (delta: number) => {
              const keep = qkv[e];
              qkv[e] = keep + delta;
              const l = refUnitLoss(qkv, w, s, unit, r0, r1);
              qkv[e] = keep;
              return l;
            };
            const fd1 = (loss(h) - loss(-h)) / (2 * h);
            const fd2 = (loss(2 * h) - loss(-2 * h)) / (4 * h);
            let wMass = 0;
            for (let r = r0; r < r1; r++) for (let c = 0; c < d; c++) wMass += Math.abs(w[(b * T + r) * C + (unit % heads) * d + c]);
            const fdBound = Math.abs(fd2 - fd1) + (2 ** -52 * (T * (d + 4) + 8) * wMass * maxV) / h;
            const where = `dqkv[${b}, ${i}, ${col}]`;
            expect(Math.abs(back.dqkv[e] - fd1), `${where}: float64 backward ${back.dqkv[e]} vs finite difference ${fd1}`).to.be.at.most(fdBound + 1e-12);
            expect(Math.abs(got[e] - fd1), `${where}: ${got[e]} vs finite difference ${fd1}`).to.be.at.most(back.bound[e] + fdBound);
            largest = Math.max(largest, Math.abs(fd1));
            checked++;
          }
        }
      }
      expect(checked).to.equal(B * T * 3 * C);
      expect(largest, 'some gradient is not small').to.be.above(1e-2);
    });
  }
});
