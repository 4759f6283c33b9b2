// Softmax cross-entropy (src/nn/cross-entropy.ts) against float64 with the bounds of test/nn-reference.ts:
// losses (forward only: logits untouched), and the fused forward-backward (the same loss bits, logits
// overwritten by (softmax − onehot)·scale); dlogits also against central differences of the float64 loss.
// Rows cross the vector blocks of 8 and the masked tail (V = 1, 2, 3, 7, …, up to a few thousand); logits
// include rows with ±80 (the max must be subtracted), a confident row (p_target → 1) and a −10³⁰ logit.
// 1, 2 and 3 members give the same bits; a target outside [0, V) throws and writes nothing of its member's rows.

import { expect } from 'chai';
import { crossEntropyForward, crossEntropyForwardBackward } from '../src/nn/cross-entropy.js';
import { Program, runSerial } from '../src/nn/program.js';
import { Arena, bits, sameForEveryTeam } from './nn-arena.js';
import { centralDifference, crossEntropyOf, expectWithin, refCrossEntropy } from './nn-reference.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();

function logitsFor(rows: number, V: number, targets: Int32Array, next: () => number): Float32Array {
  const x = randomArray(rows * V, next, 3);
  if (rows > 1) for (let j = 0; j < V; j++) x[V + j] = next() < 0.5 ? 80 : -80;
  if (rows > 2) x[2 * V + targets[2]] = 40; // a confident row: p_target = 1 − ~e⁻³⁷
  if (V > 2) x[V - 1] = -1e30;
  return x;
}

describe(`nn cross-entropy (seed ${seed})`, () => {
  const shapes: [number, number][] = [[1, 1], [3, 2], [37, 3], [1, 7], [130, 8], [3, 64], [37, 200], [5, 3001], [2, 4099]];
  for (const [rows, V] of shapes) {
    it(`${rows} rows × V = ${V}: losses and dlogits within float64 bounds, differences, logits untouched by the forward, 1-3 members the same bits`, () => {
      const next = rng(seed ^ (rows * 7919 + V * 104729));
      const targets = Int32Array.from({ length: rows }, () => Math.floor(next() * V));
      const x = logitsFor(rows, V, targets, next);
      const scale = 1 / rows;
      const [losses, fusedLosses, dlogits] = sameForEveryTeam((members) => {
        const a = new Arena(2 * rows * V + 4 * rows);
        const t = a.allocInts('targets', targets);
        const logits = a.alloc('logits', rows * V, x);
        const l1 = a.alloc('losses', rows);
        const l2 = a.alloc('losses (fused)', rows);
        const p = new Program();
        crossEntropyForward(p, a.kernels, l1, logits, t, rows, V);
        a.snapshot();
        runSerial(p, members);
        a.written(l1);
        const q = new Program();
        crossEntropyForwardBackward(q, a.kernels, l2, logits, t, rows, V, scale);
        a.snapshot();
        runSerial(q, members);
        a.written(l2, logits);
        return [a.get(l1, rows), a.get(l2, rows), a.get(logits, rows * V)];
      });
      const ref = refCrossEntropy(x, targets, rows, V, scale);
      expectWithin('losses', losses, ref.losses.want, ref.losses.bound);
      expect(bits(fusedLosses), 'the fused pass gives the same losses').to.equal(bits(losses));
      expectWithin('dlogits', dlogits, ref.dlogits.want, ref.dlogits.bound);
      // d(scale·loss_r)/d logits[r, j] by differences of the float64 loss of row r
      const xs = Float64Array.from(x);
      for (const e of new Set([0, rows * V - 1, ...Array.from({ length: 16 }, () => Math.floor(next() * rows * V))])) {
        const r = Math.floor(e / V);
        if (Math.abs(x[e]) > 100) continue; // the −10³⁰ logit: h would vanish in it
        const loss = (v: Float64Array) => [crossEntropyOf(v.subarray(r * V, (r + 1) * V), targets[r])];
        const diff = centralDifference(loss, xs, e, [scale], 1e-4, V);
        if (!(Math.abs(dlogits[e] - diff.value) <= ref.dlogits.bound[e] + diff.error)) expect.fail(`dlogits[${e}]: kernel ${dlogits[e]}, differences ${diff.value} ± ${diff.error}, bound ${ref.dlogits.bound[e]}`);
      }
    });
  }

  for (const members of [1, 3]) {
    it(`a target outside [0, V) throws naming it and its row; its member writes nothing (${members} members)`, () => {
      const [rows, V] = [6, 10];
      for (const bad of [V, -1]) {
        const a = new Arena(4 * rows * V);
        const targets = Int32Array.from({ length: rows }, (_, i) => i % V);
        targets[4] = bad;
        const t = a.allocInts('targets', targets);
        const logits = a.alloc('logits', rows * V, randomArray(rows * V, rng(seed)));
        const losses = a.alloc('losses', rows);
        const p = new Program();
        crossEntropyForwardBackward(p, a.kernels, losses, logits, t, rows, V, 1 / rows);
        a.snapshot();
        expect(() => runSerial(p, members)).to.throw(`forward and backward: target ${bad} at position 4 is outside [0, ${V})`);
        if (members === 1) a.written();
        else a.written(losses, logits);
        if (members === 3) {
          // member 2 has rows 4 and 5: they are untouched
          expect(Number.isNaN(a.get(losses, rows)[5])).to.equal(true);
        }
      }
    });
  }
});
