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
}

const f32 = Math.fround;

export function referenceState(initial: Float32Array[]): ReferenceState {
  return {
    p: initial.map((x) => Float64Array.from(x)),
    m: initial.map((x) => new Float64Array(x.length)),
    v: initial.map((x) => new Float64Array(x.length)),
    vmax: initial.map((x) => new Float64Array(x.length)),
    step: 0,
  };
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

  st.p.forEach((p, k) => {
    const lr = c.lr * eta * c.lrMultiplier[k];
    const lambda = c.weightDecay[k];
    const m = st.m[k];
    const v = st.v[k];
    const vmax = st.vmax[k];
    for (let i = 0; i < p.length; i++) {
      let gi = g[k][i] * clip;
      let pi = p[i];
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
    }
  });
  st.step = t;
  return true;
}

/** Largest |a − b| / (|b| + floor) over all elements. */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (Math.abs(b[i]) + floor);
    if (!(e <= worst)) worst = e; // NaN counts as worst
  }
  return worst;
}

/** A small seeded PRNG (mulberry32) so failures can be replayed from the logged seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(n: number, next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

export function freshSeed(): number {
  const fromEnv = process.env.SHARDTRAIN_SEED;
  return fromEnv ? Number(fromEnv) : (Math.random() * 2 ** 31) >>> 0;
}
