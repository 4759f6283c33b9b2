// λ from a timescale, and the weight-decay schedule: the two options that say how large λ is and how it
// moves, checked and resolved once, when the optimizer is created.
//
// Timescale (Wang & Aitchison 2024, "How to set AdamW's weight decay as you scale model and dataset size",
// arXiv 2405.13698): with decoupled decay, p ← p·(1 − r·λ) − …, the weights are an exponential moving average
// of the updates with timescale τ_iter = 1/(r·λ) iterations, r the rate that multiplies λ (lr for AdamW).
// Holding τ fixed, in epochs, keeps the regularisation when lr, batch or run length change; λ follows:
//   λ = 1/(r_peak·τ_iter),   τ_iter = τ_epochs·M,   M = N/B iterations per epoch
// with N training examples and B the global batch (an epoch of the data order is exactly N/B steps: batches
// straddle epochs). r_peak is the decay mode's rate at the lr schedule's peak (conventions.ts, DecayModeSpec):
//   lr, corrected   lr·η_max     (the peak lr; at the peak AdamC's λ·lr_t²/lr_max is λ·lr_max)
//   step-size       lr·η_max     (α = lr_t/bc1 or lr_t·√bc2/bc1 tends to lr_t as the bias corrections go to 1)
//   multiplier      η_max        (`paper`: decay by η_t·λ, no lr)
//   one             1            (`tf-sgd-decay`: decay by λ)
// lr is the base lr; a parameter group's lr multiplier k gives its tensors the timescale τ/k. `l2` has no
// timescale (λ·p goes through Adam's division by √v̂) and is refused.

import { decayModeSpecs, type DecayMode, type DecayModeSpec } from './conventions.js';
import type { ScheduleName, ScheduleOptions } from './schedules.js';

/**
 * τ in optimizer steps, or in epochs with the steps per epoch M = N/B. The optimizer alone knows no data set:
 * `{ epochs }` without iterationsPerEpoch is refused when the optimizer is created (the trainer fills it in).
 */
export type WeightDecayTimescale =
  | { readonly iterations: number }
  | { readonly epochs: number; readonly iterationsPerEpoch?: number };

export interface ResolvedTimescale {
  readonly iterations: number;
  /** τ as given in epochs (null when given in iterations), and M = N/B it was multiplied by. */
  readonly epochs: number | null;
  readonly iterationsPerEpoch: number | null;
  /** r_peak: what multiplies λ in the decay rate at the schedule's peak. */
  readonly peakRate: number;
  /** What r_peak is, in words ("peak lr 0.01", "peak multiplier 1", "1"). */
  readonly rateName: string;
  /** λ = 1/(r_peak·τ_iter). */
  readonly weightDecay: number;
}

/**
 * λ over time: `constant` (λ, the default), `lr` (λ·η_t, following the lr schedule's multiplier), or a
 * schedule of its own (λ·s(t), the same names and options as the lr schedule; optax's
 * `weight_decay: ScalarOrSchedule`). The multiplier applies to λ in every decay mode's formula.
 */
export type WeightDecayScheduleInput = 'lr' | ScheduleName | Omit<ScheduleOptions, 'lr'>;

/** M = N/B: steps per epoch of N training examples in global batches of B (a real number). */
export function iterationsPerEpoch(datasetSize: number, globalBatch: number): number {
  return datasetSize / globalBatch;
}

/** r_peak of a decay mode (see the table above); null for `l2`, which has no decay rate. */
export function peakDecayRate(rate: DecayModeSpec['rate'], where: DecayModeSpec['where'], lr: number, peakMultiplier: number): number | null {
  if (where === 'gradient') return null;
  switch (rate) {
    case 'lr':
    case 'step-size':
    case 'corrected':
      return lr * peakMultiplier;
    case 'multiplier':
      return peakMultiplier;
    case 'one':
      return 1;
  }
}

function rateName(rate: DecayModeSpec['rate'], lr: number, peakMultiplier: number): string {
  if (rate === 'one') return 'rate 1';
  if (rate === 'multiplier') return `peak multiplier ${peakMultiplier}`;
  return `peak lr ${lr * peakMultiplier}`;
}

const isPositive = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0;
const quote = (x: unknown) => (typeof x === 'string' ? JSON.stringify(x) : String(x));

/** Check `options.weightDecayTimescale` and turn it into λ, or throw one line naming what is wrong. */
export function resolveTimescale(input: unknown, decay: DecayMode, lr: number, peakMultiplier: number): ResolvedTimescale {
  const where = 'options.weightDecayTimescale';
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new TypeError(`${where} must be { iterations: τ } or { epochs: τ, iterationsPerEpoch: M }, got ${quote(input)}`);
  }
  const o = input as Record<string, unknown>;
  const unit = 'iterations' in o ? 'iterations' : 'epochs' in o ? 'epochs' : null;
  if (unit === null || ('iterations' in o && 'epochs' in o)) {
    throw new RangeError(`${where} must give τ in one unit, { iterations: τ } or { epochs: τ }, got keys ${Object.keys(o).join(', ') || 'none'}`);
  }
  const allowed = unit === 'iterations' ? ['iterations'] : ['epochs', 'iterationsPerEpoch'];
  for (const key of Object.keys(o)) if (!allowed.includes(key)) throw new RangeError(`${where}.${key} is not a key of { ${allowed.join(', ')} }`);
  const tau = o[unit];
  if (!isPositive(tau)) throw new RangeError(`${where}.${unit} must be a finite number > 0, got ${quote(tau)}`);
  let perEpoch: number | null = null;
  if (unit === 'epochs') {
    if (o.iterationsPerEpoch === undefined) {
      throw new RangeError(`${where}.epochs needs iterationsPerEpoch (training examples / global batch): the optimizer alone knows no data set; give { iterations: τ } instead`);
    }
    if (!isPositive(o.iterationsPerEpoch)) throw new RangeError(`${where}.iterationsPerEpoch must be a finite number > 0, got ${quote(o.iterationsPerEpoch)}`);
    perEpoch = o.iterationsPerEpoch;
  }
  const spec = decayModeSpecs[decay];
  const peakRate = peakDecayRate(spec.rate, spec.where, lr, peakMultiplier);
  if (peakRate === null) {
    throw new RangeError(`${where} has no meaning with decay 'l2': λ·p is added to the gradient and scaled by Adam's 1/√v̂, so it sets no timescale; give weightDecay instead`);
  }
  if (!(peakRate > 0)) throw new RangeError(`${where}: the decay rate at the schedule's peak is ${peakRate} (lr ${lr}, peak multiplier ${peakMultiplier}), so no λ gives a timescale`);
  const iterations = unit === 'iterations' ? (tau as number) : (tau as number) * perEpoch!;
  return Object.freeze({
    iterations,
    epochs: unit === 'epochs' ? (tau as number) : null,
    iterationsPerEpoch: perEpoch,
    peakRate,
    rateName: rateName(spec.rate, lr, peakMultiplier),
    weightDecay: 1 / (peakRate * iterations),
  });
}

const g4 = (x: number) => String(Number(x.toPrecision(4)));

/** The line a run prints: which τ, in which unit, at which rate, gave which λ. */
export function timescaleNote(t: ResolvedTimescale): string {
  const tau = t.epochs === null ? `τ = ${g4(t.iterations)} iterations` : `τ = ${g4(t.epochs)} epochs × ${g4(t.iterationsPerEpoch!)} iterations per epoch = ${g4(t.iterations)} iterations`;
  return `weight decay from its timescale: ${tau} at ${t.rateName} → λ = 1/(${g4(t.peakRate)} × ${g4(t.iterations)}) = ${t.weightDecay.toPrecision(4)}`;
}
