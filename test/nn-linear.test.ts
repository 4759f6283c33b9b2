// The linear layer (src/nn/linear.ts): forward and backward against float64 within the GEMM's γ(k+2)·Σ|terms|
// (test/nn-reference.ts refProduct), weight [cin, cout] and transposed [cout, cin], with and without bias,
// written and accumulated gradients, dinp skipped; outputs NaN-poisoned (or holding the prior when
// accumulating) and everything else fenced; 1, 2 and 3 members give the same bits; every gradient against
// central differences of the float64 forward.

import { expect } from 'chai';
import { linearBackward, linearForward } from '../src/nn/linear.js';
import { Program, runSerial } from '../src/nn/program.js';
import { Arena, sameForEveryTeam } from './nn-arena.js';
import { type Bounded, centralDifference, expectWithin, refColumnSums, refProduct, weightAt } from './nn-reference.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();

// rows × cin × cout: 1 and odd sizes, sizes off the GEMM's 4×8 tiles, and past a 64-float cache line
const shapes: [number, number, number][] = [
  [1, 1, 1], [3, 7, 64], [37, 200, 7], [130, 64, 200], [130, 200, 1], [1, 200, 200], [37, 1, 64], [3, 64, 7],
  [130, 300, 70], [300, 7, 9], // past the GEMM's k block (256) in the forward and in dW
];

interface Case {
  rows: number;
  cin: number;
  cout: number;
  transposed: boolean;
  withBias: boolean;
  withDinp: boolean;
  accumulate: boolean;
}

interface Data {
  inp: Float32Array;
  w: Float32Array;
  bias: Float32Array;
  dout: Float32Array;
  priorDinp: Float32Array;
  priorDw: Float32Array;
  priorDb: Float32Array;
}

function data(c: Case, next: () => number): Data {
  return {
    inp: randomArray(c.rows * c.cin, next),
    w: randomArray(c.cin * c.cout, next, 0.5),
    bias: randomArray(c.cout, next),
    dout: randomArray(c.rows * c.cout, next),
    priorDinp: randomArray(c.rows * c.cin, next),
    priorDw: randomArray(c.cin * c.cout, next),
    priorDb: randomArray(c.cout, next),
  };
}

/** [out, dinp, dweight, dbias] computed by `members` members. */
function run(c: Case, d: Data, members: number): Float32Array[] {
  const { rows, cin, cout } = c;
  const a = new Arena(3 * (rows * cin + cin * cout + rows * cout) + 4 * cout);
  const inp = a.alloc('inp', rows * cin, d.inp);
  const w = a.alloc('weight', cin * cout, d.w);
  const bias = c.withBias ? a.alloc('bias', cout, d.bias) : null;
  const out = a.alloc('out', rows * cout);
  const dout = a.alloc('dout', rows * cout, d.dout);
  const dinp = c.withDinp ? a.alloc('dinp', rows * cin, c.accumulate ? d.priorDinp : undefined) : null;
  const dw = a.alloc('dweight', cin * cout, c.accumulate ? d.priorDw : undefined);
  const db = c.withBias ? a.alloc('dbias', cout, c.accumulate ? d.priorDb : undefined) : null;
  const p = new Program();
  linearForward(p, a.kernels, out, inp, w, bias, rows, cin, cout, { transposeWeight: c.transposed });
  linearBackward(p, a.kernels, dinp, dw, db, dout, inp, w, rows, cin, cout, { transposeWeight: c.transposed, accumulateInput: c.accumulate, accumulateWeight: c.accumulate });
  a.snapshot();
  runSerial(p, members);
  a.written(...[out, dinp, dw, db].filter((x): x is number => x !== null));
  return [a.get(out, rows * cout), dinp === null ? new Float32Array(0) : a.get(dinp, rows * cin), a.get(dw, cin * cout), db === null ? new Float32Array(0) : a.get(db, cout)];
}

function references(c: Case, d: Data): { out: Bounded; dinp: Bounded; dw: Bounded; db: Bounded } {
  const { rows, cin, cout, transposed } = c;
  const W = weightAt(d.w, cin, cout, transposed);
  const inp = (r: number, i: number): number => d.inp[r * cin + i];
  const dout = (r: number, o: number): number => d.dout[r * cout + o];
  return {
    out: refProduct(rows, cout, cin, inp, W, c.withBias ? d.bias : null, null),
    dinp: refProduct(rows, cin, cout, dout, (o, i) => W(i, o), null, c.accumulate ? d.priorDinp : null),
    dw: transposed
      ? refProduct(cout, cin, rows, (o, r) => dout(r, o), inp, null, c.accumulate ? d.priorDw : null)
      : refProduct(cin, cout, rows, (i, r) => inp(r, i), dout, null, c.accumulate ? d.priorDw : null),
    db: refColumnSums(d.dout, rows, cout, cout, c.accumulate ? d.priorDb : null),
  };
}

/** Indices to check by differences: the first, the last and some between. */
function sample(n: number, next: () => number): number[] {
  return [...new Set([0, n - 1, ...Array.from({ length: 12 }, () => Math.floor(next() * n))])];
}

/**
 * The written gradients against central differences of L = Σ dout·out (float64 forward). Each perturbed
 * element moves only a row (inp) or a column (weight, bias) of out, so only that slice is recomputed.
 */
function againstDifferences(c: Case, d: Data, got: Float32Array[], ref: ReturnType<typeof references>, next: () => number): void {
  const { rows, cin, cout, transposed } = c;
  const inp = Float64Array.from(d.inp);
  const w = Float64Array.from(d.w);
  const bias = Float64Array.from(d.bias);
  const W = (i: number, o: number): number => (transposed ? w[o * cin + i] : w[i * cout + o]);
  const outAt = (r: number, o: number): number => {
    let s = c.withBias ? bias[o] : 0;
    for (let i = 0; i < cin; i++) s += inp[r * cin + i] * W(i, o);
    return s;
  };
  const column = (o: number): number[] => Array.from({ length: rows }, (_, r) => outAt(r, o));
  const doutColumn = (o: number): number[] => Array.from({ length: rows }, (_, r) => d.dout[r * cout + o]);
  const check = (label: string, g: number, bound: number, diff: { value: number; error: number }): void => {
    if (!(Math.abs(g - diff.value) <= bound + diff.error)) expect.fail(`${label}: kernel ${g}, differences ${diff.value} ± ${diff.error}, bound ${bound}`);
  };
  const h = 1e-3;
  if (c.withDinp) {
    for (const e of sample(rows * cin, next)) {
      const r = Math.floor(e / cin);
      const diff = centralDifference(() => Array.from({ length: cout }, (_, o) => outAt(r, o)), inp, e, d.dout.subarray(r * cout, (r + 1) * cout), h, cin);
      check(`dinp[${e}]`, got[1][e], ref.dinp.bound[e], diff);
    }
  }
  for (const e of sample(cin * cout, next)) {
    const o = transposed ? Math.floor(e / cin) : e % cout;
    check(`dweight[${e}]`, got[2][e], ref.dw.bound[e], centralDifference(() => column(o), w, e, doutColumn(o), h, cin));
  }
  if (c.withBias) {
    for (const o of sample(cout, next)) check(`dbias[${o}]`, got[3][o], ref.db.bound[o], centralDifference(() => column(o), bias, o, doutColumn(o), h, cin));
  }
}

describe(`nn linear (seed ${seed})`, () => {
  for (const [rows, cin, cout] of shapes) {
    for (const transposed of [false, true]) {
      const variants: Omit<Case, 'rows' | 'cin' | 'cout' | 'transposed'>[] = [
        { withBias: true, withDinp: true, accumulate: false },
        { withBias: true, withDinp: true, accumulate: true },
        { withBias: false, withDinp: false, accumulate: false },
      ];
      for (const v of variants) {
        const c: Case = { rows, cin, cout, transposed, ...v };
        const name = `${rows}×${cin} → ${cout}${transposed ? ', weight [cout, cin]' : ''}${v.withBias ? '' : ', no bias'}${v.withDinp ? '' : ', no dinp'}${v.accumulate ? ', gradients +=' : ''}`;
        it(`${name}: float64 bound${v.accumulate ? '' : ', finite differences'}, 1-3 members the same bits`, () => {
          const next = rng(seed ^ (rows * 7919 + cin * 104729 + cout * 31 + (transposed ? 17 : 0)));
          const d = data(c, next);
          const got = sameForEveryTeam((members) => run(c, d, members));
          const ref = references(c, d);
          expectWithin('out', got[0], ref.out.want, ref.out.bound);
          if (c.withDinp) expectWithin('dinp', got[1], ref.dinp.want, ref.dinp.bound);
          expectWithin('dweight', got[2], ref.dw.want, ref.dw.bound);
          if (c.withBias) expectWithin('dbias', got[3], ref.db.want, ref.db.bound);
          if (!c.accumulate) againstDifferences(c, d, got, ref, next);
        });
      }
    }
  }
});
