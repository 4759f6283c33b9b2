import { expect } from 'chai';
// A float64 reference of every convention, written from each framework's own formula (not from the kernel's
// folded scalars), with float32 storage: after each step p, m, v and v_max are rounded to float32 exactly as
// the optimizer stores them. What remains between the two is intermediate rounding, a few float32 ulps.

import type { ConventionKnobs } from '../src/optim/conventions.js';

export interface ReferenceConfig {
  knobs: ConventionKnobs;
  lr: number;
  /** Schedule multiplier for step t (0-based completed steps). */
  multiplier: (t: number) => number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Per tensor. */
  weightDecay: number[];
  lrMultiplier: number[];
  clipGlobalNorm?: number;
  clipValue?: number;
}

export interface ReferenceState {
  p: Float64Array[];
  m: Float64Array[];
  v: Float64Array[];
  vmax: Float64Array[];
  step: number;
  /**
   * After a step: per element, a bound on how far a correct kernel computing in float32 may land from this
   * float64 result — float32 rounding (u = 2^-24) of every operand, propagated through the formula. Adam is
   * ill-conditioned where |g| ≈ ε or where g + λ·p cancels, and the bound says so rather than hiding it.
   */
  bound: { p: Float64Array[]; m: Float64Array[]; v: Float64Array[] };
}

const u = 2 ** -24;

const f32 = Math.fround;

export function referenceState(initial: Float32Array[]): ReferenceState {
  return {
    p: initial.map((x) => Float64Array.from(x)),
    m: initial.map((x) => new Float64Array(x.length)),
    v: initial.map((x) => new Float64Array(x.length)),
    vmax: initial.map((x) => new Float64Array(x.length)),
    step: 0,
    bound: { p: [], m: [], v: [] },
  };
}

/** A reference state holding exactly the optimizer's float32 values (to compare one step at a time). */
export function stateFrom(step: number, p: ArrayLike<number>[], m: ArrayLike<number>[], v: ArrayLike<number>[], vmax: ArrayLike<number>[] | null): ReferenceState {
  const copy = (xs: ArrayLike<number>[]) => xs.map((x) => Float64Array.from(x));
  return { p: copy(p), m: copy(m), v: copy(v), vmax: vmax ? copy(vmax) : p.map((x) => new Float64Array(x.length)), step, bound: { p: [], m: [], v: [] } };
}

/** One step with the mean of `slots` (slots[r][tensor]). Returns false when skipped for a non-finite gradient. */
export function referenceStep(st: ReferenceState, c: ReferenceConfig, slots: Float32Array[][]): boolean {
  const R = slots.length;
  // Replica mean, then elementwise clip, then global-norm clip (torch clip_grad_norm_).
  const g = st.p.map((p, k) =>
    Float64Array.from(p, (_, i) => {
      let s = 0;
      for (let r = 0; r < R; r++) s += slots[r][k][i];
      let x = s / R;
      if (c.clipValue !== undefined) x = Math.min(Math.max(x, -c.clipValue), c.clipValue);
      return x;
    }),
  );
  let sq = 0;
  for (const gk of g) for (const x of gk) sq += x * x;
  if (!Number.isFinite(sq)) return false;
  const norm = Math.sqrt(sq);
  const clip = c.clipGlobalNorm !== undefined ? Math.min(1, c.clipGlobalNorm / (norm + 1e-6)) : 1;

  const t = st.step + 1;
  const eta = c.multiplier(st.step);
  const { decay, biasCorrection, epsilonHat, amsgrad } = c.knobs;
  const bc1 = biasCorrection ? 1 - c.beta1 ** t : 1;
  const bc2 = biasCorrection ? 1 - c.beta2 ** t : 1;

  st.bound = { p: [], m: [], v: [] };
  st.p.forEach((p, k) => {
    const bp = new Float64Array(p.length);
    const bm = new Float64Array(p.length);
    const bv = new Float64Array(p.length);
    st.bound.p.push(bp);
    st.bound.m.push(bm);
    st.bound.v.push(bv);
    const lr = c.lr * eta * c.lrMultiplier[k];
    const lambda = c.weightDecay[k];
    const m = st.m[k];
    const v = st.v[k];
    const vmax = st.vmax[k];
    for (let i = 0; i < p.length; i++) {
      let gi = g[k][i] * clip;
      let pi = p[i];
      const pOld = p[i];
      const mOld = m[i];
      const vOld = v[i];
      // Operand scale of g: the slots' magnitudes (their float32 sum rounds on that scale) and |λ·p|.
      let gScale = 0;
      for (let r = 0; r < R; r++) gScale += Math.abs(slots[r][k][i]) / R;
      gScale = gScale * clip + (decay === 'l2' ? Math.abs(lambda * pi) : 0);
      if (decay === 'l2') gi += lambda * pi; // torch.optim.Adam: grad = grad.add(param, alpha=weight_decay)
      if (decay === 'decoupled') pi = pi * (1 - lr * lambda); // torch AdamW: param.mul_(1 - lr * wd)
      if (decay === 'schedule-scaled') pi = pi - eta * lambda * p[i]; // paper Alg. 2, η_t·λ·θ_{t−1}
      m[i] = f32(c.beta1 * m[i] + (1 - c.beta1) * gi);
      v[i] = f32(c.beta2 * v[i] + (1 - c.beta2) * gi * gi);
      let vi = v[i];
      if (amsgrad) vi = vmax[i] = Math.max(vmax[i], vi);
      let alpha: number;
      if (epsilonHat) {
        // Keras/TF: alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t); p -= alpha * m / (sqrt(v) + eps)
        alpha = (lr * Math.sqrt(bc2)) / bc1;
        pi = pi - (alpha * m[i]) / (Math.sqrt(vi) + c.eps);
      } else {
        // torch: denom = sqrt(v)/sqrt(bc2) + eps; p -= lr/bc1 * m / denom
        alpha = lr / bc1;
        pi = pi - (alpha * m[i]) / (Math.sqrt(vi) / Math.sqrt(bc2) + c.eps);
      }
      if (decay === 'after-update') pi = pi - alpha * lambda * pi; // mxnet 0.7: weight -= lr*wd*weight, after
      p[i] = f32(pi);

      // Float32 error propagation, each operation rounding by ≤ u of its operands' scale (constants 2× generous).
      const dg = 4 * u * gScale;
      const dm = 8 * u * (c.beta1 * Math.abs(mOld) + (1 - c.beta1) * gScale) + (1 - c.beta1) * dg;
      const dv = 8 * u * (c.beta2 * vOld + (1 - c.beta2) * gScale * gScale) + (1 - c.beta2) * 2 * gScale * dg;
      const sqrtScale = epsilonHat ? 1 : 1 / Math.sqrt(bc2);
      const root = Math.sqrt(vi);
      const denom = root * sqrtScale + c.eps;
      const dDenom = (sqrtScale * dv) / (2 * Math.max(root, Math.sqrt(dv), Number.MIN_VALUE)) + 4 * u * denom;
      const update = (alpha * Math.abs(m[i])) / denom;
      const dUpdate = alpha * (dm / denom + (Math.abs(m[i]) * dDenom) / (denom * denom)) + 8 * u * update;
      const shrink = decay === 'after-update' ? Math.abs(1 - alpha * lambda) : 1;
      bm[i] = dm + u * Math.abs(m[i]);
      bv[i] = dv + u * v[i];
      bp[i] = (8 * u * (Math.abs(pOld) + update) + dUpdate) * shrink + u * Math.abs(p[i]) + 1e-45;
    }
  });
  st.step = t;
  return true;
}

/**
 * Normwise relative error max|a − b| / max|b|. Elementwise relative error is the wrong yardstick for float32
 * kernels: m ← β1·m + (1−β1)·g cancels, so an element of m far smaller than its operands carries an
 * absolute error of an ulp *of the operands*; normwise error measures rounding on the tensor's own scale.
 */
export function normwiseError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) diff = d; // NaN counts as worst
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** A small seeded PRNG (the data order's mulberry32) so failures can be replayed from the logged seed. */
export { mulberry32 as rng } from '../src/models/random.js';

export function randomArray(n: number, next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

export function freshSeed(): number {
  const fromEnv = process.env.SHARDTRAIN_SEED;
  return fromEnv ? Number(fromEnv) : (Math.random() * 2 ** 31) >>> 0;
}

/** `p` rejects with an Error whose message matches `message` (a RegExp, or an exact string). */
export async function expectReject(p: Promise<unknown>, message: RegExp | string): Promise<Error> {
  let error: Error | undefined;
  try {
    await p;
  } catch (err) {
    error = err as Error;
  }
  expect(error, `expected a rejection matching ${message}`).to.be.instanceOf(Error);
  if (typeof message === 'string') expect(error!.message).to.equal(message);
  else expect(error!.message).to.match(message);
  return error!;
}
