// Learning-rate schedules, as multipliers of the base lr. t = completed steps (0-based), so the first step
// uses t = 0. Formulas follow Hugging Face `transformers.optimization` and Google BERT's optimization.py.

export type ScheduleName = 'constant' | 'constant-warmup' | 'linear' | 'cosine' | 'polynomial' | 'bert';

export const scheduleNames: readonly ScheduleName[] = Object.freeze([
  'constant',
  'constant-warmup',
  'linear',
  'cosine',
  'polynomial',
  'bert',
]);

export interface ScheduleOptions {
  name: ScheduleName;
  /** Base learning rate (needed for `lrAt` and for `polynomial`'s end value). Default 1. */
  lr?: number;
  warmupSteps?: number;
  /** Required by linear, cosine, polynomial and bert. */
  totalSteps?: number;
  /** polynomial: exponent of the decay. Default 1. */
  power?: number;
  /** polynomial: lr reached at totalSteps and kept after. Default 1e-7 (HF). */
  endLr?: number;
  /** cosine: number of half-periods / 2 (HF `num_cycles`). Default 0.5: one half cosine to zero. */
  cycles?: number;
}

export interface Schedule {
  readonly options: Readonly<Required<ScheduleOptions>>;
  /** Multiplier of the base lr after t completed steps. */
  multiplierAt(t: number): number;
  /** lr·multiplierAt(t). */
  lrAt(t: number): number;
  /**
   * The largest multiplier the schedule reaches at any step t ≥ 0 (not only the steps a run takes): lr_max =
   * lr·peakMultiplier is AdamC's lr_max and the peak lr of a weight-decay timescale. Every schedule here ramps
   * up during warmup and never rises above its value at t = w after it (cosine with cycles > ½ comes back to
   * 1, never above), so the peak is the largest of the multipliers at steps 0, w − 1 and w: 1 for constant,
   * constant-warmup, cosine and polynomial; 1 for linear when totalSteps > warmupSteps, else (w − 1)/w; for
   * bert max((w − 1)/w, 1 − w/T), or 1 without warmup. It can be 0 (linear or bert with w = T = 1).
   */
  readonly peakMultiplier: number;
}

const needsTotal: ReadonlySet<ScheduleName> = new Set(['linear', 'cosine', 'polynomial', 'bert']);

const scheduleDefaults = Object.freeze({ lr: 1, warmupSteps: 0, totalSteps: 0, power: 1, endLr: 1e-7, cycles: 0.5 });

function isNonNegativeInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

export function validateScheduleOptions(options: ScheduleOptions, where = 'schedule'): Readonly<Required<ScheduleOptions>> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${where} must be an object like { name: 'linear', totalSteps: 1000 }, got ${String(options)}`);
  }
  const o = { ...scheduleDefaults, ...options };
  if (!scheduleNames.includes(o.name)) {
    throw new RangeError(`${where}.name must be one of ${scheduleNames.join(', ')}, got ${JSON.stringify(o.name)}`);
  }
  if (typeof o.lr !== 'number' || !Number.isFinite(o.lr) || o.lr < 0) {
    throw new RangeError(`${where}.lr must be a finite number >= 0, got ${o.lr}`);
  }
  if (!isNonNegativeInteger(o.warmupSteps)) {
    throw new RangeError(`${where}.warmupSteps must be a non-negative integer, got ${o.warmupSteps}`);
  }
  if (needsTotal.has(o.name)) {
    if (!isNonNegativeInteger(o.totalSteps) || o.totalSteps < 1) {
      throw new RangeError(`${where}.totalSteps must be a positive integer for '${o.name}', got ${options.totalSteps}`);
    }
    if (o.warmupSteps > o.totalSteps) {
      throw new RangeError(`${where}.warmupSteps (${o.warmupSteps}) must not exceed totalSteps (${o.totalSteps})`);
    }
  } else if (!isNonNegativeInteger(o.totalSteps)) {
    throw new RangeError(`${where}.totalSteps must be a non-negative integer, got ${o.totalSteps}`);
  }
  if (typeof o.power !== 'number' || !Number.isFinite(o.power) || o.power <= 0) {
    throw new RangeError(`${where}.power must be a finite number > 0, got ${o.power}`);
  }
  if (typeof o.endLr !== 'number' || !Number.isFinite(o.endLr) || o.endLr < 0) {
    throw new RangeError(`${where}.endLr must be a finite number >= 0, got ${o.endLr}`);
  }
  if (o.name === 'polynomial' && !(o.lr > o.endLr)) {
    throw new RangeError(`${where}.endLr (${o.endLr}) must be smaller than lr (${o.lr}) for 'polynomial'`);
  }
  if (typeof o.cycles !== 'number' || !Number.isFinite(o.cycles) || o.cycles <= 0) {
    throw new RangeError(`${where}.cycles must be a finite number > 0, got ${o.cycles}`);
  }
  return Object.freeze(o);
}

function warmup(t: number, w: number): number {
  return t / Math.max(1, w);
}

function multiplierFunction(o: Readonly<Required<ScheduleOptions>>): (t: number) => number {
  const { warmupSteps: w, totalSteps: T, power, endLr, lr, cycles } = o;
  switch (o.name) {
    case 'constant':
      return () => 1;
    case 'constant-warmup':
      return (t) => (t < w ? warmup(t, w) : 1);
    case 'linear':
      return (t) => (t < w ? warmup(t, w) : Math.max(0, (T - t) / Math.max(1, T - w)));
    case 'cosine':
      return (t) => {
        if (t < w) return warmup(t, w);
        const progress = (t - w) / Math.max(1, T - w);
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * cycles * progress)));
      };
    case 'polynomial':
      return (t) => {
        if (t < w) return warmup(t, w);
        if (t > T) return endLr / lr;
        const remaining = 1 - (t - w) / Math.max(1, T - w);
        return ((lr - endLr) * remaining ** power + endLr) / lr;
      };
    case 'bert':
      // tf.train.polynomial_decay(lr, t, T, end=0, power=1) counts from step 0, then warmup overrides it.
      return (t) => (t < w ? t / w : 1 - Math.min(t, T) / T);
  }
}

export function createSchedule(options: ScheduleOptions): Schedule {
  const o = validateScheduleOptions(options);
  const multiplierAt = multiplierFunction(o);
  const w = o.warmupSteps;
  const peakMultiplier = Math.max(multiplierAt(0), multiplierAt(w), w > 0 ? multiplierAt(w - 1) : 0);
  return Object.freeze({
    options: o,
    peakMultiplier,
    multiplierAt(t: number): number {
      if (!isNonNegativeInteger(t)) throw new RangeError(`schedule step must be a non-negative integer, got ${t}`);
      return multiplierAt(t);
    },
    lrAt(t: number): number {
      return o.lr * this.multiplierAt(t);
    },
  });
}
