// Plain-JS shard kernels: the reference implementation every faster kernel is tested against, and the
// fallback where WebAssembly SIMD is unavailable. One flat loop per segment, scalars read once into locals,
// no allocation. JS arithmetic is float64; storage is float32.
//
// Per element, for every convention (the knobs only change the scalars):
//   g  = clamp(Σ_r slot_r · (1/R), ±clipValue) · clipScale + l2·p
//   m' = β1·m + (1−β1)·g;  v' = β2·v + (1−β2)·g²;  v̂ = amsgrad ? max(v_max, v') : v'
//   p' = (p·decayPre − stepSize·m' / (√v̂·sqrtScale + ε)) · decayPost
// With cautious weight decay both decay factors are 1 where m'·p < 0: the update u = stepSize·m'/(…) has the
// sign of m' (stepSize ≥ 0, the denominator > 0), so m'·p ≥ 0 is u·p ≥ 0, zeros counting as agreement;
// p is the value before the step, also for a decay after the update.

import {
  kBeta1Field,
  kBeta2Field,
  kCautiousField,
  kClipScaleField,
  kClipValueField,
  kDecayPostOffset,
  kDecayPreOffset,
  kEpsField,
  kInvSlotsField,
  kL2Offset,
  kOneMinusBeta1Field,
  kOneMinusBeta2Field,
  kSqrtScaleField,
  kStepSizeOffset,
  tensorField,
} from '../memory/control.js';
import type { ShardStates } from '../memory/shard-states.js';

/**
 * Float64 partial sums per norm chunk are kept in this many lanes (element i of a chunk in lane i mod 8),
 * summed by sumLanes(): independent running sums the wasm kernel can add in parallel, in an order fixed by the
 * flat index alone.
 */
export const kSumLanes = 8;

/** The lanes' total, in a fixed pairwise order. */
export function sumLanes(l: Float64Array): number {
  return l[0] + l[1] + (l[2] + l[3]) + (l[4] + l[5] + (l[6] + l[7]));
}

export interface ShardKernels {
  readonly name: string;
  /**
   * Accumulate (clamped replica-mean gradient)² over shard-local [start, end) into kSumLanes float64 lanes:
   * element i goes to lane (lane0 + i − start) mod kSumLanes. Lanes follow the flat index, so a chunk's sum does not
   * depend on where shard or tensor boundaries cut it.
   */
  sumSquares(shard: ShardStates, start: number, end: number, scalars: Float64Array, lanes: Float64Array, lane0: number): void;
  /** The AdamW update of shard-local [start, end), all of it belonging to tensor `tensor`. */
  update(shard: ShardStates, start: number, end: number, scalars: Float64Array, tensor: number): void;
  /** Is every element of gradient slot `slot` in shard-local [start, end) finite with |x| <= bound? */
  slotWithinBound(shard: ShardStates, slot: number, start: number, end: number, bound: number): boolean;
}

function sumSquares(shard: ShardStates, start: number, end: number, s: Float64Array, lanes: Float64Array, lane0: number): void {
  const invSlots = s[kInvSlotsField];
  const clip = s[kClipValueField];
  const slots = shard.grads;
  const nSlots = slots.length;
  const g0 = slots[0];
  for (let i = start; i < end; i++) {
    let sum = g0[i];
    for (let r = 1; r < nSlots; r++) sum += slots[r][i];
    const g = Math.min(Math.max(sum * invSlots, -clip), clip);
    lanes[(lane0 + i - start) & (kSumLanes - 1)] += g * g;
  }
}

function update(shard: ShardStates, start: number, end: number, s: Float64Array, tensor: number): void {
  const b1 = s[kBeta1Field];
  const b2 = s[kBeta2Field];
  const omb1 = s[kOneMinusBeta1Field];
  const omb2 = s[kOneMinusBeta2Field];
  const eps = s[kEpsField];
  const sqrtScale = s[kSqrtScaleField];
  const invSlots = s[kInvSlotsField];
  const clip = s[kClipValueField];
  const clipScale = s[kClipScaleField];
  const decayPre = s[tensorField(tensor, kDecayPreOffset)];
  const stepSize = s[tensorField(tensor, kStepSizeOffset)];
  const decayPost = s[tensorField(tensor, kDecayPostOffset)];
  const l2 = s[tensorField(tensor, kL2Offset)];
  const cautious = s[kCautiousField] !== 0;
  const { params: p, m, v, vmax, grads: slots } = shard;
  const amsgrad = vmax.length > 0;
  const nSlots = slots.length;
  const g0 = slots[0];
  for (let i = start; i < end; i++) {
    let sum = g0[i];
    for (let r = 1; r < nSlots; r++) sum += slots[r][i];
    const pi = p[i];
    const g = Math.min(Math.max(sum * invSlots, -clip), clip) * clipScale + l2 * pi;
    const mi = b1 * m[i] + omb1 * g;
    const vi = b2 * v[i] + omb2 * g * g;
    m[i] = mi;
    v[i] = vi;
    let vhat = v[i];
    if (amsgrad) {
      vhat = Math.max(vmax[i], vhat);
      vmax[i] = vhat;
    }
    // u·p ≥ 0 as signs (a product could underflow in the float32 kernel); NaN never agrees.
    const ms = m[i];
    const decays = !cautious || (ms >= 0 && pi >= 0) || (ms <= 0 && pi <= 0);
    p[i] = (pi * (decays ? decayPre : 1) - (stepSize * m[i]) / (Math.sqrt(vhat) * sqrtScale + eps)) * (decays ? decayPost : 1);
  }
}

function slotWithinBound(shard: ShardStates, slot: number, start: number, end: number, bound: number): boolean {
  const g = shard.grads[slot];
  for (let i = start; i < end; i++) if (!(Math.abs(g[i]) <= bound)) return false; // false for NaN too
  return true;
}

export const jsKernels: ShardKernels = Object.freeze({ name: 'js', sumSquares, update, slotWithinBound });
