// LayerNorm (src/nn/layer-norm.ts) against float64 with the bounds of test/nn-reference.ts: the forward's out,
// mean and rstd; the backward from the kernel's own saved mean and rstd (dinp written and added to, dγ, dβ);
// then every gradient against central differences of the exact float64 forward, where the bound also carries
// what the saved statistics' own rounding can move. Rows and widths cross the vector blocks (8), the tails
// and the members' cache-line column cuts; inputs sit off zero (a mean to subtract) and, in one case, far
// off it (a cancelling mean: the bounds grow with Σ|x|/σ and say so). 1, 2 and 3 members give the same bits.

import { expect } from 'chai';
import { layerNormBackward, layerNormForward } from '../src/nn/layer-norm.js';
import { Program, runSerial } from '../src/nn/program.js';
import { Arena, sameForEveryTeam } from './nn-arena.js';
import { centralDifference, expectWithin, refLayerNormBackward, refLayerNormForward } from './nn-reference.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();
const eps = 1e-5;

interface Data {
  x: Float32Array;
  g: Float32Array;
  b: Float32Array;
  dout: Float32Array;
  prior: Float32Array;
}

/** [out, mean, rstd, dinp, dγ, dβ, dinp accumulated onto the prior] by `members` members. */
function run(rows: number, C: number, d: Data, members: number): Float32Array[] {
  const a = new Arena(6 * rows * C + 4 * C + 2 * rows);
  const inp = a.alloc('inp', rows * C, d.x);
  const gamma = a.alloc('gamma', C, d.g);
  const beta = a.alloc('beta', C, d.b);
  const out = a.alloc('out', rows * C);
  const mean = a.alloc('mean', rows);
  const rstd = a.alloc('rstd', rows);
  const dout = a.alloc('dout', rows * C, d.dout);
  const dinp = a.alloc('dinp', rows * C);
  const dgamma = a.alloc('dgamma', C);
  const dbeta = a.alloc('dbeta', C);
  const acc = a.alloc('dinp accumulated', rows * C, d.prior);
  const p = new Program();
  layerNormForward(p, a.kernels, out, mean, rstd, inp, gamma, beta, rows, C, eps);
  layerNormBackward(p, a.kernels, dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, rows, C, { accumulate: false });
  a.snapshot();
  runSerial(p, members);
  a.written(out, mean, rstd, dinp, dgamma, dbeta);
  const q = new Program();
  layerNormBackward(q, a.kernels, acc, dgamma, dbeta, dout, inp, gamma, mean, rstd, rows, C, { accumulate: true });
  a.snapshot();
  runSerial(q, members);
  a.written(acc, dgamma, dbeta);
  return [out, mean, rstd, dinp, dgamma, dbeta, acc].map((ptr, i) => a.get(ptr, [rows * C, rows, rows, rows * C, C, C, rows * C][i]));
}

/** LayerNorm of one row in float64 (the exact forward the differences are taken of). */
function rowForward(x: Float64Array, r: number, C: number, g: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  let mu = 0;
  for (let c = 0; c < C; c++) mu += x[r * C + c];
  mu /= C;
  let v = 0;
  for (let c = 0; c < C; c++) v += (x[r * C + c] - mu) ** 2;
  const rs = 1 / Math.sqrt(v / C + eps);
  return Float64Array.from({ length: C }, (_, c) => (x[r * C + c] - mu) * rs * g[c] + b[c]);
}

function cases(): { rows: number; C: number; offset: number }[] {
  const out = [];
  for (const rows of [1, 3, 37, 130]) for (const C of [1, 7, 64, 200]) out.push({ rows, C, offset: 3 });
  out.push({ rows: 5, C: 771, offset: 3 }, { rows: 9, C: 96, offset: 1000 });
  return out;
}

describe(`nn LayerNorm (seed ${seed})`, () => {
  for (const { rows, C, offset } of cases()) {
    it(`${rows} rows × C = ${C}${offset > 10 ? `, inputs around ${offset}` : ''}: float64 bounds, finite differences, dinp = and +=, 1-3 members the same bits`, () => {
      const next = rng(seed ^ (rows * 7919 + C * 104729 + offset));
      const d: Data = {
        x: Float32Array.from(randomArray(rows * C, next, 2), (v) => v + offset),
        g: randomArray(C, next, 1.5),
        b: randomArray(C, next),
        dout: randomArray(rows * C, next),
        prior: randomArray(rows * C, next),
      };
      const [out, mean, rstd, dinp, dgamma, dbeta, acc] = sameForEveryTeam((members) => run(rows, C, d, members));
      const fwd = refLayerNormForward(d.x, d.g, d.b, rows, C, eps);
      expectWithin('mean', mean, fwd.mean.want, fwd.mean.bound);
      expectWithin('rstd', rstd, fwd.rstd.want, fwd.rstd.bound);
      expectWithin('out', out, fwd.out.want, fwd.out.bound);
      const bwd = refLayerNormBackward(d.dout, d.x, d.g, mean, rstd, rows, C, null, fwd);
      expectWithin('dinp', dinp, bwd.dinp.want, bwd.dinp.bound);
      expectWithin('dgamma', dgamma, bwd.dgamma.want, bwd.dgamma.bound);
      expectWithin('dbeta', dbeta, bwd.dbeta.want, bwd.dbeta.bound);
      const accumulated = refLayerNormBackward(d.dout, d.x, d.g, mean, rstd, rows, C, d.prior);
      expectWithin('dinp +=', acc, accumulated.dinp.want, accumulated.dinp.bound);

      // Against differences of the exact forward of L = Σ dout·out: dinp through the perturbed row; dγ and
      // dβ through every row (γ[c] and β[c] reach column c of each). The saved statistics' rounding enters dγ
      // as Σ_r |dout|·(δ_r·rstd + |n̂|·ρ_r).
      const x = Float64Array.from(d.x);
      const h = 1e-4;
      const check = (label: string, g: number, bound: number, diff: { value: number; error: number }) => {
        if (!(Math.abs(g - diff.value) <= bound + diff.error)) expect.fail(`${label}: kernel ${g}, differences ${diff.value} ± ${diff.error}, bound ${bound}`);
      };
      for (const e of [0, rows * C - 1, ...Array.from({ length: 24 }, () => Math.floor(next() * rows * C))]) {
        const r = Math.floor(e / C);
        const diff = centralDifference((v) => rowForward(v, r, C, d.g, d.b), x, e, d.dout.subarray(r * C, (r + 1) * C), h, C);
        check(`dinp[${e}]`, dinp[e], bwd.dinp.bound[e] + bwd.sensitivity[e], diff);
      }
      const g = Float64Array.from(d.g);
      const b = Float64Array.from(d.b);
      const all = (gg: Float64Array, bb: Float64Array): Float64Array => {
        const o = new Float64Array(rows * C);
        for (let r = 0; r < rows; r++) o.set(rowForward(x, r, C, gg, bb), r * C);
        return o;
      };
      for (const c of new Set([0, C - 1, Math.floor(next() * C), Math.floor(next() * C)])) {
        let stats = 0;
        for (let r = 0; r < rows; r++) stats += Math.abs(d.dout[r * C + c]) * (fwd.delta[r] * rstd[r] + Math.abs((d.x[r * C + c] - mean[r]) * rstd[r]) * fwd.rho[r]) * (1 + fwd.rho[r]);
        check(`dgamma[${c}]`, dgamma[c], bwd.dgamma.bound[c] + stats, centralDifference((v) => all(v, b), g, c, d.dout, h, C));
        check(`dbeta[${c}]`, dbeta[c], bwd.dbeta.bound[c], centralDifference((v) => all(g, v), b, c, d.dout, h, C));
      }
    });
  }
});
