// GELU (tanh form), tanh and the residual adds (src/nn/activations.ts, src/nn/residual.ts) against float64
// (test/nn-reference.ts states each bound), at sizes crossing the kernels' vector tails and the members'
// cache-line cuts, with outputs NaN-poisoned and everything else fenced (test/nn-arena.ts); 1, 2 and 3
// members give the same bits; in place (dinp = dout) gives the bits of out of place; gradients also against
// central differences of the float64 forward.

import { expect } from 'chai';
import { addInto, residualForward } from '../src/nn/residual.js';
import { geluBackward, geluForward, tanhBackward, tanhForward } from '../src/nn/activations.js';
import { Program, runSerial } from '../src/nn/program.js';
import { Arena, bits, sameForEveryTeam } from './nn-arena.js';
import { centralDifference, expectWithin, refGelu, refGeluBackward, refTanh, refTanhBackward, u } from './nn-reference.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();
const sizes = [1, 3, 7, 16, 64, 200, 1031, 4099];
/** Inputs where GELU's pieces change regime: 0, tiny, the clamps near x = −10 and ±20, overflow of x³. */
const kSpecial = [0, -0, 1e-20, -1e-20, 0.5, -0.75, 3, -3, 10, -10, -10.04, -10.1, -11, -20, 20, -25, 100, -100, 1e30, -1e30];

function inputs(n: number, next: () => number, scale: number, special: readonly number[] = []): Float32Array {
  const x = randomArray(n, next, scale);
  special.forEach((v, i) => {
    if (i * 7 < n) x[i * 7] = v;
  });
  return x;
}

type Unary = (p: Program, k: Arena['kernels'], out: number, inp: number, n: number) => void;
type Backward = (p: Program, k: Arena['kernels'], dinp: number, saved: number, dout: number, n: number) => void;

/** out = f(x) by `members` members. */
function runUnary(f: Unary, x: Float32Array, members: number): Float32Array {
  const a = new Arena(2 * x.length);
  const inp = a.alloc('inp', x.length, x);
  const out = a.alloc('out', x.length);
  const p = new Program();
  f(p, a.kernels, out, inp, x.length);
  a.snapshot();
  runSerial(p, members);
  a.written(out);
  return a.get(out, x.length);
}

/** dinp from (saved, dout), out of place, and in place over dout (must be the same bits). */
function runBackward(f: Backward, saved: Float32Array, dy: Float32Array, members: number): Float32Array[] {
  const a = new Arena(4 * saved.length);
  const s = a.alloc('saved', saved.length, saved);
  const dout = a.alloc('dout', dy.length, dy);
  const dinp = a.alloc('dinp', dy.length);
  const p = new Program();
  f(p, a.kernels, dinp, s, dout, dy.length);
  a.snapshot();
  runSerial(p, members);
  a.written(dinp);
  const outOfPlace = a.get(dinp, dy.length);
  const q = new Program();
  f(q, a.kernels, dout, s, dout, dy.length);
  a.snapshot();
  runSerial(q, members);
  a.written(dout);
  expect(bits(a.get(dout, dy.length)), 'dinp = dout in place').to.equal(bits(outOfPlace));
  return [outOfPlace];
}

/** Richardson central differences of x ↦ w·f64(x) elementwise, against the kernel's gradient g = dinp for dout = w. */
function againstDifferences(label: string, f: (x: number) => number, x: Float32Array, w: Float32Array, g: Float32Array, bound: Float64Array): void {
  const xs = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]) > 8) continue; // beyond: GELU′ is 0 or 1 and h = 1e-4 steps no wider than the float32 input spacing
    const d = centralDifference((v) => [f(v[i])], xs, i, [w[i]], 1e-4, 8);
    const err = Math.abs(g[i] - d.value);
    if (!(err <= bound[i] + d.error)) expect.fail(`${label}[${i}] at x = ${x[i]}: kernel ${g[i]}, differences ${d.value} ± ${d.error}, error ${err} > ${bound[i]} + ${d.error}`);
  }
}

describe(`nn activations and residual adds (seed ${seed})`, () => {
  for (const n of sizes) {
    it(`GELU forward and backward, n = ${n}: float64 bound, finite differences, in place, 1-3 members the same bits`, () => {
      const next = rng(seed ^ (n * 7919));
      const x = inputs(n, next, 6, kSpecial);
      const dy = randomArray(n, next);
      const [out] = sameForEveryTeam((members) => [runUnary(geluForward, x, members)]);
      const fwd = refGelu(x);
      expectWithin('gelu', out, fwd.want, fwd.bound);
      const [dx] = sameForEveryTeam((members) => runBackward(geluBackward, x, dy, members));
      const bwd = refGeluBackward(x, dy);
      expectWithin('gelu backward', dx, bwd.want, bwd.bound);
      againstDifferences('gelu backward', (v) => refGelu([v]).want[0], x, dy, dx, bwd.bound);
    });

    it(`tanh forward and backward, n = ${n}: float64 bound, finite differences, in place, 1-3 members the same bits`, () => {
      const next = rng(seed ^ (n * 104729));
      const x = inputs(n, next, 4, [0, -0, 1e-20, 0.55, -0.55, 9.1, -9.1, 20, -20]);
      const dy = randomArray(n, next);
      const [y] = sameForEveryTeam((members) => [runUnary(tanhForward, x, members)]);
      const fwd = refTanh(x);
      expectWithin('tanh', y, fwd.want, fwd.bound);
      const [dx] = sameForEveryTeam((members) => runBackward(tanhBackward, y, dy, members));
      const bwd = refTanhBackward(y, dy);
      expectWithin('tanh backward', dx, bwd.want, bwd.bound);
      // against the exact derivative at x: the saved y is off by ≤ 6u·|y| (3 ulps), which moves dout·(1 − y²) by 2|y|·|dout|·6u|y|
      const sens = Float64Array.from(y, (yi, i) => bwd.bound[i] + 2 * Math.abs(yi * dy[i]) * 6 * u * Math.abs(yi));
      againstDifferences('tanh backward', Math.tanh, x, dy, dx, sens);
    });

    it(`residual: out = a + b and dst += src, n = ${n}: each element fl(a + b), in place, 1-3 members the same bits`, () => {
      const next = rng(seed ^ (n * 31));
      const av = randomArray(n, next, 100);
      const bv = randomArray(n, next, 1e-3);
      const want = Float32Array.from(av, (v, i) => Math.fround(v + bv[i]));
      const [sum, into] = sameForEveryTeam((members) => {
        const a = new Arena(4 * n);
        const pa = a.alloc('a', n, av);
        const pb = a.alloc('b', n, bv);
        const out = a.alloc('out', n);
        const p = new Program();
        residualForward(p, a.kernels, out, pa, pb, n);
        a.snapshot();
        runSerial(p, members);
        a.written(out);
        const q = new Program();
        addInto(q, a.kernels, pa, pb, n);
        a.snapshot();
        runSerial(q, members);
        a.written(pa);
        return [a.get(out, n), a.get(pa, n)];
      });
      expect(bits(sum), 'a + b').to.equal(bits(want));
      expect(bits(into), 'dst += src').to.equal(bits(want));
    });
  }

  it('GELU of NaN and ±∞: NaN stays NaN, +∞ → +∞, GELU′(±∞) is 1 and 0 (x clamped to ±20)', () => {
    const x = Float32Array.from([Number.NaN, Infinity, -Infinity, Number.NaN, 1]);
    const out = runUnary(geluForward, x, 1);
    expect(Number.isNaN(out[0]) && Number.isNaN(out[3])).to.equal(true);
    expect(out[1]).to.equal(Infinity);
    const [dx] = runBackward(geluBackward, x, Float32Array.from([1, 1, 1, 1, 1]), 1);
    expect(Number.isNaN(dx[0])).to.equal(true);
    expect(dx[1]).to.equal(1);
    expect(Math.abs(dx[2])).to.be.below(1e-34);
  });
});
