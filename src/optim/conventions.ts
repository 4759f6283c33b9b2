// Weight-decay conventions as data. Every framework's "AdamW" is the same Adam moment update with four
// knobs set differently; a convention is a named, frozen set of knobs, and each knob can be overridden
// alone. The per-step arithmetic that turns knobs into numbers lives in step-scalars.ts.
//
// Shared by all: m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²  (v replaced by v_max ← max(v_max, v) with
// AMSGrad); bc1 = 1−β1ᵗ, bc2 = 1−β2ᵗ when biasCorrection, else 1.

/**
 * Where weight decay λ enters:
 * - `decoupled`: p ← p·(1 − lr_t·λ) before the Adam step (Loshchilov & Hutter via torch/optax/Keras).
 * - `l2`: g ← g + λ·p before the moments, so decay passes through Adam's scaling (torch `Adam(weight_decay)`).
 * - `after-update`: after the Adam step, p ← p·(1 − α·λ) with the bias-corrected step size α and the
 *   *updated* p (mxnet 0.7 `Adam.update`).
 * - `schedule-scaled`: p ← p·(1 − η_t·λ) before the step, η_t = lr_t/lr_0 the schedule multiplier, not the lr
 *   (Algorithm 2 of the paper).
 */
export type DecayMode = 'decoupled' | 'l2' | 'after-update' | 'schedule-scaled';

export interface ConventionKnobs {
  readonly decay: DecayMode;
  /** Divide the moments by (1−β1ᵗ) and (1−β2ᵗ). BERT's optimizer does not. */
  readonly biasCorrection: boolean;
  /**
   * ε̂ placement (Kingma & Ba §2, Keras/TF): ε is added to √v, and bias correction folds into the step size
   * α = lr·√bc2/bc1. Otherwise (torch) ε is added to √v̂ = √v/√bc2 and the step size is lr/bc1.
   */
  readonly epsilonHat: boolean;
  /** AMSGrad: use the running maximum of v (torch ≥ 2.1 semantics: max over the raw v). */
  readonly amsgrad: boolean;
}

/** torch.optim.AdamW, optax.adamw, DeepSpeed CPU-Adam (adamw_mode). p ← p·(1−lr·λ) − lr/bc1 · m/(√v/√bc2 + ε). */
const pytorch: ConventionKnobs = Object.freeze({
  decay: 'decoupled',
  biasCorrection: true,
  epsilonHat: false,
  amsgrad: false,
});

export const conventions = Object.freeze({
  pytorch,
  /** Keras 3 / tf.keras AdamW: p ← p − p·λ·lr; α = lr·√bc2/bc1; p ← p − α·m/(√v + ε). */
  keras: Object.freeze({ ...pytorch, epsilonHat: true }),
  /**
   * Google's BERT `AdamWeightDecayOptimizer`: u = m/(√v + ε) + λ·p; p ← p − lr·u, no bias correction.
   * With bc = 1 both ε placements coincide; decay uses the pre-step p, exactly as `decoupled`.
   */
  bert: Object.freeze({ ...pytorch, biasCorrection: false, epsilonHat: true }),
  /** torch.optim.Adam(weight_decay), TF L2 regularizers, newer mxnet: g ← g + λ·p, then plain Adam. */
  l2: Object.freeze({ ...pytorch, decay: 'l2' }),
  /** mxnet 0.7 `Adam.update`: Keras-style α step, then p ← p − α·λ·p with the updated p. */
  'mxnet-legacy': Object.freeze({ ...pytorch, decay: 'after-update', epsilonHat: true }),
  /** Loshchilov & Hutter, Algorithm 2: p ← p − η_t·(α·m̂/(√v̂ + ε) + λ·p), η_t the schedule multiplier. */
  paper: Object.freeze({ ...pytorch, decay: 'schedule-scaled' }),
} as const satisfies Record<string, ConventionKnobs>);

export type ConventionName = keyof typeof conventions;

export const conventionNames = Object.freeze(Object.keys(conventions) as ConventionName[]);

export const decayModes: readonly DecayMode[] = Object.freeze(['decoupled', 'l2', 'after-update', 'schedule-scaled']);

export function isConventionName(name: unknown): name is ConventionName {
  return typeof name === 'string' && Object.hasOwn(conventions, name);
}
