// Per-step scalars, computed once on the coordinator in float64 from the integer step (never from a running
// product of β, which drifts and complicates resume), then written to the control block for every thread.

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
import { decayModeSpecs, type ConventionKnobs, type DecayModeSpec } from './conventions.js';

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
  /** η_max, the lr schedule's peak multiplier (the `corrected` rate divides by it; options refuse 0). */
  readonly peakMultiplier: number;
}

/** What multiplies λ_t in a decay mode's per-step rate (see DecayModeSpec), for one tensor at one step. */
function decayRate(rate: DecayModeSpec['rate'], lr: number, stepSize: number, eta: number, peak: number): number {
  switch (rate) {
    case 'lr':
      return lr;
    case 'step-size':
      return stepSize;
    case 'multiplier':
      return eta;
    case 'corrected':
      // λ·lr_t²/lr_max with lr_t = lr (this tensor's) and lr_max = lr·η_max/η_t: the lr multiplier cancels.
      return lr * (eta / peak);
    case 'one':
      return 1;
  }
}

/**
 * Fill the control block for step `t` (1-based for bias correction), with lr_t the scheduled lr,
 * η_t = lr_t/lr_0 the schedule multiplier and μ_t the weight-decay schedule's multiplier (λ_t = λ·μ_t; 1 for
 * a constant λ). The clip scale is set separately, once the norm is known.
 */
export function writeStepScalars(s: Float64Array, c: StepConstants, t: number, lrT: number, eta: number, mu: number): void {
  const { knobs, beta1, beta2 } = c;
  const spec = decayModeSpecs[knobs.decay];
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
  s[kCautiousField] = knobs.cautiousWeightDecay ? 1 : 0;
  const n = c.weightDecay.length;
  for (let i = 0; i < n; i++) {
    const lr = lrT * c.lrMultiplier[i];
    // μ_t = 1 leaves λ's bits as they are, so a constant λ gives exactly the scalars it always gave.
    const lambda = c.weightDecay[i] * mu;
    // ε̂ placement folds √bc2 into the step size; torch's keeps it under the square root.
    const stepSize = knobs.epsilonHat ? (lr * sqrtBc2) / bc1 : lr / bc1;
    const decay = spec.where === 'gradient' ? 0 : decayRate(spec.rate, lr, stepSize, eta, c.peakMultiplier) * lambda;
    const decayPre = spec.where === 'before' ? 1 - decay : 1;
    const decayPost = spec.where === 'after' ? 1 - decay : 1;
    const l2 = spec.where === 'gradient' ? lambda : 0;
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
