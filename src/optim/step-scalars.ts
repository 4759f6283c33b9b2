// Per-step scalars, computed once on the coordinator in float64 from the integer step (never from a running
// product of β, which drifts and complicates resume), then written to the control block for every thread.

import {
  kBeta1Field,
  kBeta2Field,
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
import type { ConventionKnobs } from './conventions.js';

export interface StepConstants {
  readonly knobs: ConventionKnobs;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Elementwise clip bound, Infinity when off. */
  readonly clipValue: number;
  readonly gradSlots: number;
  /** Per tensor: λ (0 when excluded) and lr multiplier. */
  readonly weightDecay: Float64Array;
  readonly lrMultiplier: Float64Array;
}

/**
 * Fill the control block for step `t` (1-based for bias correction), with lr_t the scheduled lr and
 * η_t = lr_t/lr_0 the schedule multiplier. The clip scale is set separately, once the norm is known.
 */
export function writeStepScalars(s: Float64Array, c: StepConstants, t: number, lrT: number, eta: number): void {
  const { knobs, beta1, beta2 } = c;
  const bc1 = knobs.biasCorrection ? 1 - beta1 ** t : 1;
  const bc2 = knobs.biasCorrection ? 1 - beta2 ** t : 1;
  const sqrtBc2 = Math.sqrt(bc2);
  s[kBeta1Field] = beta1;
  s[kBeta2Field] = beta2;
  s[kOneMinusBeta1Field] = 1 - beta1;
  s[kOneMinusBeta2Field] = 1 - beta2;
  s[kEpsField] = c.eps;
  s[kSqrtScaleField] = knobs.epsilonHat ? 1 : 1 / sqrtBc2;
  s[kInvSlotsField] = 1 / c.gradSlots;
  s[kClipValueField] = c.clipValue;
  s[kClipScaleField] = 1;
  const n = c.weightDecay.length;
  for (let i = 0; i < n; i++) {
    const lr = lrT * c.lrMultiplier[i];
    const lambda = c.weightDecay[i];
    // ε̂ placement folds √bc2 into the step size; torch's keeps it under the square root.
    const stepSize = knobs.epsilonHat ? (lr * sqrtBc2) / bc1 : lr / bc1;
    let decayPre = 1;
    let decayPost = 1;
    let l2 = 0;
    switch (knobs.decay) {
      case 'decoupled':
        decayPre = 1 - lr * lambda;
        break;
      case 'l2':
        l2 = lambda;
        break;
      case 'after-update':
        decayPost = 1 - stepSize * lambda;
        break;
      case 'schedule-scaled':
        decayPre = 1 - eta * lambda;
        break;
    }
    s[tensorField(i, kDecayPreOffset)] = decayPre;
    s[tensorField(i, kStepSizeOffset)] = stepSize;
    s[tensorField(i, kDecayPostOffset)] = decayPost;
    s[tensorField(i, kL2Offset)] = l2;
  }
}

/** torch.nn.utils.clip_grad_norm_: scale = min(1, maxNorm / (norm + 1e-6)). */
export function clipScaleFor(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}

export function setClipScale(s: Float64Array, scale: number): void {
  s[kClipScaleField] = scale;
}
