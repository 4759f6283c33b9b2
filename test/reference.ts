import { expect } from 'chai';
// A float64 reference of every convention, written from each framework's own formula (not from the kernel's
// folded scalars), with float32 storage: after each step p, m, v and v_max are rounded to float32 exactly as
// the optimizer stores them. What remains between the two is intermediate rounding, a few float32 ulps.

import type { ConventionKnobs } from '../src/optim/conventions.js';
import type { ShardedAdamW } from '../src/parallel/optimizer.js';

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
  /** μ_t, the weight-decay schedule's multiplier at step t (λ_t = λ·μ_t). Default 1. */
  decayMultiplier?: (t: number) => number;
  /** η_max, the lr schedule's peak multiplier: AdamC's lr_max = lr·η_max (per tensor: × its lr multiplier). */
  peakMultiplier?: number;
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
  const mu = c.decayMultiplier?.(st.step) ?? 1;
  const { decay, biasCorrection, epsilonHat, amsgrad, cautiousWeightDecay } = c.knobs;
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
    const lrMax = c.lr * (c.peakMultiplier ?? Number.NaN) * c.lrMultiplier[k];
    const lambda = c.weightDecay[k] * mu;
    const m = st.m[k];
    const v = st.v[k];
    const vmax = st.vmax[k];
    for (let i = 0; i < p.length; i++) {
      let gi = g[k][i] * clip;
      const pOld = p[i];
      const mOld = m[i];
      const vOld = v[i];
      // Operand scale of g: the slots' magnitudes (their float32 sum rounds on that scale) and |λ·p|.
      let gScale = 0;
      for (let r = 0; r < R; r++) gScale += Math.abs(slots[r][k][i]) / R;
      gScale = gScale * clip + (decay === 'l2' ? Math.abs(lambda * pOld) : 0);
      if (decay === 'l2') gi += lambda * pOld; // torch.optim.Adam, Caffe's Regularize: grad += wd * param
      m[i] = f32(c.beta1 * m[i] + (1 - c.beta1) * gi);
      v[i] = f32(c.beta2 * v[i] + (1 - c.beta2) * gi * gi);
      let vi = v[i];
      if (amsgrad) vi = vmax[i] = Math.max(vmax[i], vi);
      // Keras/TF/Caffe: alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t); p -= alpha * m / (sqrt(v) + eps)
      // torch: denom = sqrt(v)/sqrt(bc2) + eps; p -= lr/bc1 * m / denom
      const alpha = epsilonHat ? (lr * Math.sqrt(bc2)) / bc1 : lr / bc1;
      const step = (alpha * m[i]) / (epsilonHat ? Math.sqrt(vi) + c.eps : Math.sqrt(vi) / Math.sqrt(bc2) + c.eps);
      // The parameter after the step, with or without its weight decay.
      const withDecay = (decays: boolean): number => {
        let pi = pOld;
        if (decays && decay === 'decoupled') pi = pi * (1 - lr * lambda); // torch AdamW: param.mul_(1 - lr * wd)
        if (decays && decay === 'schedule-scaled') pi = pi - eta * lambda * pOld; // paper Alg. 2, η_t·λ·θ_{t−1}
        if (decays && decay === 'corrected') pi = pi * (1 - (lambda * lr * lr) / lrMax); // AdamC: 1 − λ·γ_t²/γ_max
        pi = pi - step;
        if (decays && decay === 'after-update') pi = pi - alpha * lambda * pi; // mxnet 0.7: weight -= lr*wd*weight, after
        if (decays && decay === 'sgd-after-update') pi = pi - 1 * (lambda * pi); // SGD(lr 1) on λ/2·‖p‖², after Adam's op
        return pi;
      };
      // Cautious (Chen et al.): decay only where the update u and p agree, u·p ≥ 0; u = step/α has the sign of m.
      const decays = !cautiousWeightDecay || step * pOld >= 0;
      const pi = withDecay(decays);
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
      const shrink = decay === 'after-update' ? Math.abs(1 - alpha * lambda) : decay === 'sgd-after-update' ? Math.abs(1 - lambda) : 1;
      bm[i] = dm + u * Math.abs(m[i]);
      bv[i] = dv + u * v[i];
      bp[i] = (8 * u * (Math.abs(pOld) + update) + dUpdate) * shrink + u * Math.abs(p[i]) + 1e-45;
      // Where m is within its own rounding bound of 0, a float32 kernel may see the other sign of u, and
      // with it the other side of the cautious mask: either result is then correct to float32 arithmetic.
      if (cautiousWeightDecay && Math.abs(m[i]) <= bm[i]) bp[i] += Math.abs(withDecay(true) - withDecay(false));
    }
  });
  st.step = t;
  return true;
}

/**
 * η_max by brute force, for the references (the optimizer has its own closed form, schedules.ts): the largest
 * multiplier over steps 0 … totalSteps + warmupSteps + 2. Past totalSteps every schedule holds its end value,
 * and past warmupSteps constant-warmup holds 1, so no later step is larger.
 */
export function peakByScan(schedule: { multiplierAt(t: number): number; options: { totalSteps: number; warmupSteps: number } }): number {
  let peak = 0;
  for (let t = 0; t <= schedule.options.totalSteps + schedule.options.warmupSteps + 2; t++) peak = Math.max(peak, schedule.multiplierAt(t));
  return peak;
}

/** The reference config of an optimizer as it resolved its options (its own schedule; η_max by the scan above). */
export function referenceConfigOf(opt: ShardedAdamW, extra: Pick<ReferenceConfig, 'clipGlobalNorm' | 'clipValue' | 'decayMultiplier'>): ReferenceConfig {
  const o = opt.options;
  return {
    knobs: opt.knobs,
    lr: o.lr,
    multiplier: (t) => opt.schedule.multiplierAt(t),
    beta1: o.betas[0],
    beta2: o.betas[1],
    eps: o.eps,
    weightDecay: opt.decayTable.map((e) => e.weightDecay),
    lrMultiplier: opt.decayTable.map((e) => e.lrMultiplier),
    peakMultiplier: peakByScan(opt.schedule),
    ...extra,
  };
}

export interface OptimizerState {
  step: number;
  p: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
  vmax: Float32Array[] | null;
}

/** Copies of an optimizer's step and states, tensor by tensor in `names` order. */
export function optimizerState(opt: ShardedAdamW, names: readonly string[]): OptimizerState {
  return {
    step: opt.globalStep,
    p: names.map((n) => opt.params[n].slice()),
    m: names.map((n) => opt.state.m[n].slice()),
    v: names.map((n) => opt.state.v[n].slice()),
    vmax: opt.state.vmax ? names.map((n) => opt.state.vmax![n].slice()) : null,
  };
}

/** How many elements of `after` lie outside the bound of the reference step taken from `before`, and the first. */
export function outsideBound(before: OptimizerState, config: ReferenceConfig, slots: Float32Array[][], after: OptimizerState): { count: number; first: string } {
  const ref = stateFrom(before.step, before.p, before.m, before.v, before.vmax);
  if (!referenceStep(ref, config, slots)) throw new Error(`step ${after.step}: the reference skipped the step (a non-finite gradient)`);
  let count = 0;
  let first = '';
  for (const [region, got] of [['p', after.p], ['m', after.m], ['v', after.v]] as const) {
    got.forEach((x, t) => {
      const want = ref[region][t];
      const bound = ref.bound[region][t];
      for (let i = 0; i < x.length; i++) {
        if (!(Math.abs(x[i] - want[i]) <= bound[i])) {
          if (count++ === 0) first = `step ${after.step} ${region} of t${t}[${i}] = ${x[i]}, reference ${want[i]}, bound ${bound[i]}`;
        }
      }
    });
  }
  return { count, first };
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
