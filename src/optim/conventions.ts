// Weight-decay conventions as data. Every framework's "AdamW" is the same Adam moment update with five
// knobs set differently; a convention is a named, frozen set of knobs, and each knob can be overridden
// alone. The per-step arithmetic that turns knobs into numbers lives in step-scalars.ts.
//
// Shared by all: m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²  (v replaced by v_max ← max(v_max, v) with
// AMSGrad); bc1 = 1−β1ᵗ, bc2 = 1−β2ᵗ when biasCorrection, else 1.

/**
 * Where weight decay λ enters (the table `decayModeSpecs` below says it as data):
 * - `decoupled`: p ← p·(1 − lr_t·λ) before the Adam step (Loshchilov & Hutter via torch/optax/Keras).
 * - `l2`: g ← g + λ·p before the moments, so decay passes through Adam's scaling (torch `Adam(weight_decay)`).
 * - `after-update`: after the Adam step, p ← p·(1 − α·λ) with the bias-corrected step size α and the
 *   *updated* p (mxnet 0.7 `Adam.update`).
 * - `schedule-scaled`: p ← p·(1 − η_t·λ) before the step, η_t = lr_t/lr_0 the schedule multiplier, not the lr
 *   (Algorithm 2 of the paper; MosaicML Composer's `DecoupledAdamW`).
 * - `corrected`: p ← p·(1 − λ·lr_t²/lr_max) before the step, lr_max the schedule's peak lr (Defazio 2025,
 *   AdamC, arXiv 2506.02285): the decay rate follows lr_t twice, so the steady-state ‖p‖ does not grow
 *   when the lr is annealed.
 * - `sgd-after-update`: after the Adam step, p ← p·(1 − λ) with the updated p, scaled by neither the lr nor
 *   the schedule: a second optimizer, SGD with lr 1 on λ/2·‖p‖², run after Adam's (the seed's TF answer;
 *   Hinton 1987's "decremented by 0.4 %" per update).
 */
export type DecayMode = 'decoupled' | 'l2' | 'after-update' | 'schedule-scaled' | 'corrected' | 'sgd-after-update';

/**
 * A decay mode as data: where λ acts, and what multiplies λ to give the per-step rate r_t (the decay factor
 * is 1 − r_t; for `gradient`, λ is added to g as λ·p and there is no rate).
 *   lr          lr_t (the scheduled lr, times the tensor's lr multiplier)
 *   step-size   α_t, the convention's bias-corrected step size (lr_t/bc1, or lr_t·√bc2/bc1 with ε̂)
 *   multiplier  η_t = lr_t/lr_0, the schedule's multiplier
 *   corrected   lr_t·η_t/η_max = λ·lr_t²/lr_max with lr_max = lr_0·η_max (the tensor's lr multiplier cancels
 *               in the ratio, so a group's lr_max is its own peak)
 *   one         1: λ itself
 */
export interface DecayModeSpec {
  readonly where: 'gradient' | 'before' | 'after';
  readonly rate: 'lr' | 'step-size' | 'multiplier' | 'corrected' | 'one';
}

export const decayModeSpecs: Readonly<Record<DecayMode, DecayModeSpec>> = Object.freeze({
  decoupled: Object.freeze({ where: 'before', rate: 'lr' }),
  l2: Object.freeze({ where: 'gradient', rate: 'one' }),
  'after-update': Object.freeze({ where: 'after', rate: 'step-size' }),
  'schedule-scaled': Object.freeze({ where: 'before', rate: 'multiplier' }),
  corrected: Object.freeze({ where: 'before', rate: 'corrected' }),
  'sgd-after-update': Object.freeze({ where: 'after', rate: 'one' }),
} as const);

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
  /**
   * Cautious weight decay (Chen et al. 2025, arXiv 2510.12402): decay only the coordinates where the Adam
   * update u and p agree in sign, p ← p − lr_t·(u + λ·𝟙[u⊙p ≥ 0]⊙p). The mask uses p before the step for
   * every decay mode that has a rate (before or after the update); `l2` has none and refuses it.
   */
  readonly cautiousWeightDecay: boolean;
}

/** torch.optim.AdamW, optax.adamw, DeepSpeed CPU-Adam (adamw_mode). p ← p·(1−lr·λ) − lr/bc1 · m/(√v/√bc2 + ε). */
const pytorch: ConventionKnobs = Object.freeze({
  decay: 'decoupled',
  biasCorrection: true,
  epsilonHat: false,
  amsgrad: false,
  cautiousWeightDecay: false,
});

/** Keras 3 / tf.keras AdamW: p ← p − p·λ·lr; α = lr·√bc2/bc1; p ← p − α·m/(√v + ε). */
const keras: ConventionKnobs = Object.freeze({ ...pytorch, epsilonHat: true });

export const conventions = Object.freeze({
  /** Also torch ≥ 2.7 `Adam(decoupled_weight_decay=True)` (AdamW is that since 2.7). */
  pytorch,
  keras,
  /**
   * Google's BERT `AdamWeightDecayOptimizer`: u = m/(√v + ε) + λ·p; p ← p − lr·u, no bias correction.
   * With bc = 1 both ε placements coincide; decay uses the pre-step p, exactly as `decoupled`.
   */
  bert: Object.freeze({ ...pytorch, biasCorrection: false, epsilonHat: true }),
  /** torch.optim.Adam(weight_decay), TF L2 regularizers, newer mxnet: g ← g + λ·p, then plain Adam. */
  l2: Object.freeze({ ...pytorch, decay: 'l2' }),
  /** mxnet 0.7 `Adam.update`: Keras-style α step, then p ← p − α·λ·p with the updated p. */
  'mxnet-legacy': Object.freeze({ ...keras, decay: 'after-update' }),
  /**
   * Loshchilov & Hutter, Algorithm 2: p ← p − η_t·(α·m̂/(√v̂ + ε) + λ·p), η_t the schedule multiplier.
   * MosaicML Composer's `DecoupledAdamW` is the same (p·(1 − lr_t/lr_0·λ) before torch's AdamW step).
   */
  paper: Object.freeze({ ...pytorch, decay: 'schedule-scaled' }),
  /** AdamC (Defazio 2025, arXiv 2506.02285): p ← p·(1 − λ·lr_t²/lr_max), then the `pytorch` Adam step. */
  adamc: Object.freeze({ ...pytorch, decay: 'corrected' }),
  /**
   * The seed's own TF workaround: `tf.train.AdamOptimizer` on the loss (ε̂, α = lr·√bc2/bc1), then, under
   * `tf.control_dependencies([train_op])`, `GradientDescentOptimizer(1.0)` on λ/2·‖p‖²: p ← p·(1 − λ) on the
   * updated p, scaled by neither the lr nor the schedule.
   */
  'tf-sgd-decay': Object.freeze({ ...keras, decay: 'sgd-after-update' }),
  /**
   * Caffe's `AdamSolver` as the code has it: `SGDSolver::Regularize` adds λ·p to the gradient
   * (src/caffe/solvers/sgd_solver.cpp), then `adam_solver.cpp` steps with α = lr·√bc2/bc1 and ε̂ added to √v:
   * L2 in the gradient with Keras' ε.
   */
  caffe: Object.freeze({ ...keras, decay: 'l2' }),
} as const satisfies Record<string, ConventionKnobs>);

export type ConventionName = keyof typeof conventions;

export const conventionNames = Object.freeze(Object.keys(conventions) as ConventionName[]);

export const decayModes: readonly DecayMode[] = Object.freeze(Object.keys(decayModeSpecs) as DecayMode[]);

export function isConventionName(name: unknown): name is ConventionName {
  return typeof name === 'string' && Object.hasOwn(conventions, name);
}
