// The layers composed as char-lm's model is (embedding → flatten → linear → LayerNorm → tanh → linear →
// softmax cross-entropy, mean over the batch), one program forward down and backward up, run as 1, 2 and 3
// members (the same bits); every element of every parameter gradient against central differences of the
// float64 composite's mean loss.
//
// The tolerance is a first-order rounding bound for the whole chain, propagated element by element: each
// layer's own bound (test/nn-reference.ts, evaluated at the kernel's actual float32 inputs) plus what the
// errors already in its inputs can do, through the absolute values of its Jacobian (linear: |W|, |x|;
// LayerNorm: rstd·|γ|·(e + mean e + |n̂|·mean(|n̂|·e)); tanh: 1 − y²; softmax: p⊙(e + Σp·e)). Forward errors E
// are carried down, then the backward's up; a parameter's gradient collects both (dW = xᵀ·dy sees x's and
// dy's). Nothing in it is fitted to the result.

import { expect } from 'chai';
import { crossEntropyForward, crossEntropyForwardBackward } from '../src/nn/cross-entropy.js';
import { embeddingBackward, embeddingForward } from '../src/nn/embedding.js';
import { layerNormBackward, layerNormForward } from '../src/nn/layer-norm.js';
import { linearBackward, linearForward } from '../src/nn/linear.js';
import { tanhBackward, tanhForward } from '../src/nn/activations.js';
import { Program, runSerial } from '../src/nn/program.js';
import { Arena, sameForEveryTeam } from './nn-arena.js';
import { centralDifference, crossEntropyOf, gamma, refColumnSums, refCrossEntropy, refLayerNormBackward, refLayerNormForward, refProduct, refScatter, u } from './nn-reference.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();
const eps = 1e-5;

interface Shape {
  B: number;
  ctx: number;
  E: number;
  H: number;
  V: number;
}

const kParams = ['table', 'w1', 'b1', 'gamma', 'beta', 'w2', 'b2'] as const;
type ParamName = (typeof kParams)[number];
type Params = Record<ParamName, Float32Array>;

function init(s: Shape, next: () => number): Params {
  const cin = s.ctx * s.E;
  return {
    table: randomArray(s.V * s.E, next),
    w1: randomArray(cin * s.H, next, Math.sqrt(3 / cin)),
    b1: randomArray(s.H, next, 0.1),
    gamma: Float32Array.from(randomArray(s.H, next, 0.5), (v) => 1 + v),
    beta: randomArray(s.H, next, 0.1),
    w2: randomArray(s.H * s.V, next, Math.sqrt(3 / s.H)),
    b2: randomArray(s.V, next, 0.1),
  };
}

/** The mean loss of the float64 composite. */
function meanLoss(s: Shape, p: Record<ParamName, ArrayLike<number>>, ids: Int32Array, targets: Int32Array): number {
  const cin = s.ctx * s.E;
  let total = 0;
  for (let b = 0; b < s.B; b++) {
    const x = new Float64Array(cin);
    for (let c = 0; c < s.ctx; c++) for (let e = 0; e < s.E; e++) x[c * s.E + e] = p.table[ids[b * s.ctx + c] * s.E + e];
    const h = Float64Array.from({ length: s.H }, (_, j) => {
      let t = p.b1[j];
      for (let i = 0; i < cin; i++) t += x[i] * p.w1[i * s.H + j];
      return t;
    });
    const mu = h.reduce((a, v) => a + v, 0) / s.H;
    const rs = 1 / Math.sqrt(h.reduce((a, v) => a + (v - mu) ** 2, 0) / s.H + eps);
    const y = h.map((v, j) => Math.tanh((v - mu) * rs * p.gamma[j] + p.beta[j]));
    const z = Float64Array.from({ length: s.V }, (_, o) => {
      let t = p.b2[o];
      for (let j = 0; j < s.H; j++) t += y[j] * p.w2[j * s.V + o];
      return t;
    });
    total += crossEntropyOf(z, targets[b]);
  }
  return total / s.B;
}

interface Run {
  grads: Record<ParamName, Float32Array>;
  acts: Record<'x' | 'h1' | 'mean' | 'rstd' | 'a' | 'y' | 'z' | 'dz' | 'da' | 'dh1' | 'dx', Float32Array>;
}

/** One forward and backward by `members` members; the activations read between the two programs. */
function run(s: Shape, params: Params, idv: Int32Array, tv: Int32Array, members: number): Run {
  const { B, ctx, E, H, V } = s;
  const cin = ctx * E;
  const ar = new Arena(4 * (V * E + cin * H + H * V) + 16 * B * (cin + H + V));
  const k = ar.kernels;
  const P = Object.fromEntries(kParams.map((n) => [n, ar.alloc(n, params[n].length, params[n])])) as Record<ParamName, number>;
  const G = Object.fromEntries(kParams.map((n) => [n, ar.alloc(`d${n}`, params[n].length)])) as Record<ParamName, number>;
  const ids = ar.allocInts('ids', idv);
  const targets = ar.allocInts('targets', tv);
  const sizes = { x: B * cin, h1: B * H, mean: B, rstd: B, a: B * H, y: B * H, z: B * V, dy: B * H, dh1: B * H, dx: B * cin, losses: B };
  const A = Object.fromEntries(Object.entries(sizes).map(([n, len]) => [n, ar.alloc(n, len)])) as Record<keyof typeof sizes, number>;
  const fwd = new Program();
  embeddingForward(fwd, k, A.x, ids, P.table, B * ctx, E); // [B·ctx, E] is [B, ctx·E]: the flatten is free
  linearForward(fwd, k, A.h1, A.x, P.w1, P.b1, B, cin, H);
  layerNormForward(fwd, k, A.a, A.mean, A.rstd, A.h1, P.gamma, P.beta, B, H, eps);
  tanhForward(fwd, k, A.y, A.a, B * H);
  linearForward(fwd, k, A.z, A.y, P.w2, P.b2, B, H, V);
  crossEntropyForward(fwd, k, A.losses, A.z, targets, B, V);
  ar.snapshot();
  runSerial(fwd, members);
  ar.written(A.x, A.h1, A.mean, A.rstd, A.a, A.y, A.z, A.losses);
  const acts = Object.fromEntries(['x', 'h1', 'mean', 'rstd', 'a', 'y', 'z'].map((n) => [n, ar.get(A[n as keyof typeof A], sizes[n as keyof typeof sizes])])) as Run['acts'];
  const bwd = new Program();
  crossEntropyForwardBackward(bwd, k, A.losses, A.z, targets, B, V, 1 / B); // z becomes dz
  linearBackward(bwd, k, A.dy, G.w2, G.b2, A.z, A.y, P.w2, B, H, V);
  tanhBackward(bwd, k, A.dy, A.y, A.dy, B * H); // in place: dy becomes da
  layerNormBackward(bwd, k, A.dh1, G.gamma, G.beta, A.dy, A.h1, P.gamma, A.mean, A.rstd, B, H, { accumulate: false });
  linearBackward(bwd, k, A.dx, G.w1, G.b1, A.dh1, A.x, P.w1, B, cin, H);
  embeddingBackward(bwd, k, G.table, A.dx, ids, B * ctx, E, V);
  ar.snapshot();
  runSerial(bwd, members);
  ar.written(A.losses, A.z, A.dy, A.dh1, A.dx, ...kParams.map((n) => G[n]));
  acts.dz = ar.get(A.z, B * V);
  acts.da = ar.get(A.dy, B * H);
  acts.dh1 = ar.get(A.dh1, B * H);
  acts.dx = ar.get(A.dx, B * cin);
  // dy itself (before tanh′ overwrote it in place) is dz·W2ᵀ: the bound recomputes it from the kernel's dz
  const grads = Object.fromEntries(kParams.map((n) => [n, ar.get(G[n], params[n].length)])) as Run['grads'];
  return { grads, acts };
}

const abs = (x: ArrayLike<number>): Float64Array => Float64Array.from(x, Math.abs);
/** |A| (m×k, row-major) times e (k×n). */
function absProduct(a: ArrayLike<number>, m: number, k: number, e: ArrayLike<number>, n: number, aT = false, eT = false): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let kk = 0; kk < k; kk++) {
    const av = Math.abs(aT ? a[kk * m + i] : a[i * k + kk]);
    if (av === 0) continue;
    for (let j = 0; j < n; j++) out[i * n + j] += av * Math.abs(eT ? e[j * k + kk] : e[kk * n + j]);
  }
  return out;
}
const plus = (...xs: ArrayLike<number>[]): Float64Array => Float64Array.from(xs[0], (_, i) => xs.reduce((t, x) => t + x[i], 0));

/** The first-order bound of every parameter gradient (see the header). */
function chainBounds(s: Shape, p: Params, r: Run, idv: Int32Array, tv: Int32Array): Record<ParamName, Float64Array> {
  const { B, ctx, E, H, V } = s;
  const cin = ctx * E;
  const { x, h1, mean, rstd, y, z, dz, da, dh1, dx } = r.acts;
  // forward: h1 = x·W1 + b1 (x exact)
  const Eh1 = refProduct(B, H, cin, (i, kk) => x[i * cin + kk], (kk, j) => p.w1[kk * H + j], p.b1, null).bound;
  // LayerNorm: its own bound at the kernel's h1, plus h1's errors through |J| = rstd·|γ|·(e + mean e + |n̂|·mean(|n̂|e))
  const ln = refLayerNormForward(h1, p.gamma, p.beta, B, H, eps);
  const n = Float64Array.from(h1, (v, i) => (v - mean[Math.floor(i / H)]) * rstd[Math.floor(i / H)]);
  const Ea = new Float64Array(B * H);
  const delta = new Float64Array(B);
  const rho = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let me = 0;
    let mne = 0;
    for (let j = 0; j < H; j++) {
      me += Eh1[b * H + j] / H;
      mne += (Math.abs(n[b * H + j]) * Eh1[b * H + j]) / H;
    }
    for (let j = 0; j < H; j++) Ea[b * H + j] = ln.out.bound[b * H + j] + rstd[b] * Math.abs(p.gamma[j]) * (Eh1[b * H + j] + me + Math.abs(n[b * H + j]) * mne);
    delta[b] = ln.delta[b] + me; // the saved mean, against the exact one
    rho[b] = ln.rho[b] + rstd[b] * mne; // the saved rstd, relative
  }
  // tanh: 3 ulps, and a's errors through 1 − y²
  const Ey = Float64Array.from(y, (v, i) => 6 * u * Math.abs(v) + (1 - v * v) * Ea[i]);
  // logits, then dz = (softmax − onehot)/B: CE's own bound at the kernel's z, plus z's errors through the softmax Jacobian
  const Ez = plus(refProduct(B, V, H, (i, kk) => y[i * H + kk], (kk, j) => p.w2[kk * V + j], p.b2, null).bound, absProduct(Ey, B, H, p.w2, V));
  const ce = refCrossEntropy(z, tv, B, V, 1 / B);
  const Edz = new Float64Array(B * V);
  for (let b = 0; b < B; b++) {
    const probs = Float64Array.from({ length: V }, (_, j) => ce.dlogits.want[b * V + j] * B + (j === tv[b] ? 1 : 0));
    const mix = probs.reduce((t, pj, j) => t + pj * Ez[b * V + j], 0);
    for (let j = 0; j < V; j++) Edz[b * V + j] = ce.dlogits.bound[b * V + j] + (probs[j] * (Ez[b * V + j] + mix)) / B;
  }
  // backward of the head: dW2 = yᵀ·dz, db2 = Σ dz, dy = dz·W2ᵀ
  const dW2 = plus(refProduct(H, V, B, (i, kk) => y[kk * H + i], (kk, j) => dz[kk * V + j], null, null).bound, absProduct(Ey, H, B, dz, V, true), absProduct(y, H, B, Edz, V, true));
  const db2 = plus(refColumnSums(dz, B, V, V, null).bound, refColumnSums(Edz, B, V, V, null).want);
  const dy = refProduct(B, H, V, (i, kk) => dz[i * V + kk], (kk, j) => p.w2[j * V + kk], null, null);
  const Edy = plus(dy.bound, absProduct(Edz, B, V, p.w2, H, false, true));
  // tanh′ from the saved y: γ(4) of the result, dy's errors through 1 − y², y's errors through 2|y|·|dy|
  const Eda = Float64Array.from(da, (v, i) => gamma(4) * Math.abs(v) + (1 - y[i] * y[i]) * Edy[i] + 2 * Math.abs(y[i] * dy.want[i]) * Ey[i]);
  // LayerNorm backward: its own bound and the saved statistics' (δ, ρ against the exact ones), da's errors through |Jᵀ|,
  // and h1's errors moving n̂ by rstd·E (into dinp as in the statistics' term, into dγ as Σ|dout|·rstd·E)
  const lnb = refLayerNormBackward(da, h1, p.gamma, mean, rstd, B, H, null, { delta, rho });
  const Edh1 = new Float64Array(B * H);
  const Egamma = plus(lnb.dgamma.bound);
  const Ebeta = plus(lnb.dbeta.bound, refColumnSums(Eda, B, H, H, null).want);
  for (let b = 0; b < B; b++) {
    let mge = 0;
    let mnge = 0;
    let b0 = 0;
    let mg = 0;
    for (let j = 0; j < H; j++) {
      const i = b * H + j;
      mge += (Math.abs(p.gamma[j]) * Eda[i]) / H;
      mnge += (Math.abs(n[i] * p.gamma[j]) * Eda[i]) / H;
      b0 += (da[i] * p.gamma[j] * n[i]) / H;
      mg += (Math.abs(da[i] * p.gamma[j]) * rstd[b] * Eh1[i]) / H;
    }
    for (let j = 0; j < H; j++) {
      const i = b * H + j;
      const fromDa = rstd[b] * (Math.abs(p.gamma[j]) * Eda[i] + mge + Math.abs(n[i]) * mnge);
      const fromH1 = rstd[b] * (Math.abs(b0) * rstd[b] * Eh1[i] + Math.abs(n[i]) * mg);
      Edh1[i] = lnb.dinp.bound[i] + lnb.sensitivity[i] + fromDa + fromH1;
      Egamma[j] += Math.abs(da[i]) * (delta[b] * rstd[b] + Math.abs(n[i]) * rho[b] + rstd[b] * Eh1[i]) * (1 + rho[b]) + Eda[i] * Math.abs(n[i]);
    }
  }
  // the first linear's backward: dW1 = xᵀ·dh1 (x exact), db1 = Σ dh1, dx = dh1·W1ᵀ; then the scatter into the table
  const dW1 = plus(refProduct(cin, H, B, (i, kk) => x[kk * cin + i], (kk, j) => dh1[kk * H + j], null, null).bound, absProduct(x, cin, B, Edh1, H, true));
  const db1 = plus(refColumnSums(dh1, B, H, H, null).bound, refColumnSums(Edh1, B, H, H, null).want);
  const Edx = plus(refProduct(B, cin, H, (i, kk) => dh1[i * H + kk], (kk, j) => p.w1[j * H + kk], null, null).bound, absProduct(Edh1, B, H, p.w1, cin, false, true));
  const table = plus(refScatter(dx, idv, B * ctx, E, V, null).bound, refScatter(Edx, idv, B * ctx, E, V, null).want);
  return { table, w1: dW1, b1: db1, gamma: Egamma, beta: Ebeta, w2: dW2, b2: db2 };
}

describe(`nn composite: char-lm's MLP with LayerNorm, tanh and cross-entropy (seed ${seed})`, () => {
  const shapes: Shape[] = [
    { B: 5, ctx: 3, E: 7, H: 37, V: 27 },
    { B: 3, ctx: 4, E: 8, H: 43, V: 70 },
  ];
  for (const s of shapes) {
    it(`batch ${s.B}, context ${s.ctx}, embedding ${s.E}, hidden ${s.H}, vocabulary ${s.V}: every parameter gradient against differences of the float64 composite; 1-3 members the same bits`, () => {
      const next = rng(seed ^ (s.B * 7919 + s.H * 104729 + s.V));
      const params = init(s, next);
      const idv = Int32Array.from({ length: s.B * s.ctx }, () => Math.floor(next() * s.V));
      const tv = Int32Array.from({ length: s.B }, () => Math.floor(next() * s.V));
      const runs = [1, 2, 3].map((m) => run(s, params, idv, tv, m));
      sameForEveryTeam((m) => kParams.map((n) => runs[m - 1].grads[n]));
      const r = runs[0];
      const bounds = chainBounds(s, params, r, idv, tv);
      const p64 = Object.fromEntries(kParams.map((n) => [n, Float64Array.from(params[n])])) as Record<ParamName, Float64Array>;
      const depth = s.ctx * s.E + s.H + s.V;
      let checked = 0;
      for (const name of kParams) {
        const g = r.grads[name];
        let nonzero = 0;
        let worst = 0;
        let scale = 0;
        for (let i = 0; i < g.length; i++) {
          const d = centralDifference(() => [meanLoss(s, p64, idv, tv)], p64[name], i, [1], 1e-4, depth);
          const err = Math.abs(g[i] - d.value);
          if (!(err <= bounds[name][i] + d.error)) expect.fail(`d${name}[${i}]: kernel ${g[i]}, differences ${d.value} ± ${d.error}, error ${err} > bound ${bounds[name][i]}`);
          worst = Math.max(worst, err / (bounds[name][i] + d.error));
          scale = Math.max(scale, Math.abs(d.value));
          if (g[i] !== 0) nonzero++;
          checked++;
        }
        if (process.env.SHARDTRAIN_NN_WORST) console.log(`      d${name}: worst error / bound ${worst.toPrecision(3)}, largest |gradient| ${scale.toPrecision(3)}, largest bound ${Math.max(...bounds[name]).toPrecision(3)}`);
        if (name !== 'table') expect(nonzero, `d${name} has nonzero elements`).to.be.greaterThan(0);
      }
      expect(checked).to.equal(kParams.reduce((t, n) => t + params[n].length, 0));
    });
  }
});
