// The optimizer's math options, the piscina way: an interface (all optional) → frozen defaults → one merge
// by spread → a flat run of checks whose messages name the field and the value. The enums and defaults here
// are the only copy: the config schema (src/train/config.ts) is built from them. What concerns threads and
// memory (params, threads, gradient slots, dispatch) is checked in src/parallel/optimizer-options.ts.

import { conventions, conventionNames, decayModes, isConventionName, type ConventionKnobs, type ConventionName, type DecayMode } from './conventions.js';
import { compileDecayTable, type ExclusionRule, type ParamGroup, type TensorDecayEntry } from './decay-rules.js';
import { kernelChoices, type KernelChoice } from '../kernels/shard-kernels.js';
import { createSchedule, scheduleNames, validateScheduleOptions, type ScheduleName, type ScheduleOptions } from './schedules.js';
import { resolveTimescale, type ResolvedTimescale, type WeightDecayScheduleInput, type WeightDecayTimescale } from './weight-decay.js';

export const nonFinitePolicies = Object.freeze(['throw', 'skip', 'ignore'] as const);
export type NonFinitePolicy = (typeof nonFinitePolicies)[number];

export interface AdamwOptions {
  /** A named set of knobs (see conventions.ts). Default 'pytorch'. */
  convention?: ConventionName;
  /** Override one knob of the convention. */
  decay?: DecayMode;
  biasCorrection?: boolean;
  epsilonHat?: boolean;
  amsgrad?: boolean;
  /** Decay only where the Adam update and p agree in sign (any convention but `l2`). Default false. */
  cautiousWeightDecay?: boolean;
  /** Base learning rate. Default 1e-3. */
  lr?: number;
  /** A schedule name, or its options (its `lr` is taken from `lr`). Default constant. */
  schedule?: ScheduleName | Omit<ScheduleOptions, 'lr'>;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8 (torch). Keras uses 1e-7 and BERT 1e-6: pass them to match those exactly. */
  eps?: number;
  /** λ. Default 0.01 (torch AdamW). Not with weightDecayTimescale. */
  weightDecay?: number;
  /** λ from AdamW's EMA timescale: λ = 1/(r_peak·τ_iter) (weight-decay.ts). Replaces weightDecay. */
  weightDecayTimescale?: WeightDecayTimescale;
  /** λ_t = λ·μ_t: 'constant' (default), 'lr' (the lr schedule's multiplier), or a schedule of its own. */
  weightDecaySchedule?: WeightDecayScheduleInput;
  excludeFromWeightDecay?: ExclusionRule;
  paramGroups?: readonly ParamGroup[];
  /** Clip the replica-mean gradient to this global L2 norm (torch clip_grad_norm_). */
  clipGlobalNorm?: number;
  /** Clip every gradient element to [−c, c] (Keras clipvalue, mxnet clip_gradient), before the norm clip. */
  clipValue?: number;
  /** A NaN/±Inf gradient: throw naming the tensor (default), skip the step, or apply it unchecked ('ignore': saves one read of the gradients). */
  onNonFinite?: NonFinitePolicy;
  /** Shard kernel. Default 'auto': WebAssembly SIMD where available, else plain JS. */
  kernel?: KernelChoice;
}

export const adamwDefaults = Object.freeze({
  convention: 'pytorch' as ConventionName,
  lr: 1e-3,
  schedule: 'constant' as ScheduleName,
  betas: Object.freeze([0.9, 0.999]) as readonly [number, number],
  eps: 1e-8,
  weightDecay: 0.01,
  onNonFinite: 'throw' as NonFinitePolicy,
  kernel: 'auto' as KernelChoice,
});

export const adamwKeys: readonly (keyof AdamwOptions)[] = Object.freeze([
  'convention', 'decay', 'biasCorrection', 'epsilonHat', 'amsgrad', 'cautiousWeightDecay', 'lr', 'schedule', 'betas', 'eps',
  'weightDecay', 'weightDecayTimescale', 'weightDecaySchedule', 'excludeFromWeightDecay', 'paramGroups', 'clipGlobalNorm', 'clipValue', 'onNonFinite', 'kernel',
] satisfies (keyof AdamwOptions)[]);

export interface ResolvedAdamw {
  readonly convention: ConventionName;
  readonly knobs: ConventionKnobs;
  readonly lr: number;
  readonly schedule: Readonly<Required<ScheduleOptions>>;
  /** η_max: the lr schedule's peak multiplier (lr_max = lr·η_max). */
  readonly peakMultiplier: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  /** λ, as given or from the timescale. */
  readonly weightDecay: number;
  /** How λ came from weightDecayTimescale, or null when it was given. */
  readonly weightDecayTimescale: ResolvedTimescale | null;
  /** 'lr', or the λ schedule's own options (constant by default). */
  readonly weightDecaySchedule: 'lr' | Readonly<Required<ScheduleOptions>>;
  readonly decayTable: readonly TensorDecayEntry[];
  readonly clipGlobalNorm: number | undefined;
  readonly clipValue: number | undefined;
  readonly onNonFinite: NonFinitePolicy;
  readonly kernel: KernelChoice;
}

function isFiniteNumber(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** A value as an options message quotes it. */
export function show(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(show).join(', ')}]`;
  return String(x);
}

export function checkNumber(key: string, x: unknown, ok: (n: number) => boolean, expected: string): number {
  if (!isFiniteNumber(x) || !ok(x)) throw new RangeError(`options.${key} must be ${expected}, got ${show(x)}`);
  return x;
}

function checkBoolean(key: string, x: unknown): boolean | undefined {
  if (x !== undefined && typeof x !== 'boolean') throw new TypeError(`options.${key} must be true or false, got ${show(x)}`);
  return x;
}

export function pick<T extends string>(key: string, x: unknown, allowed: readonly T[]): T {
  if (typeof x !== 'string' || !allowed.includes(x as T)) {
    throw new RangeError(`options.${key} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${show(x)}`);
  }
  return x as T;
}

/** `{ lr: undefined }` means "default", as if the key were absent. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Check the math options (defaults filled in) and compile the exclusion rules for tensors `names`. */
export function resolveAdamwOptions(options: AdamwOptions, names: readonly string[]): ResolvedAdamw {
  const given = stripUndefined(options);
  const o = { ...adamwDefaults, ...given };
  if (!isConventionName(o.convention)) {
    throw new RangeError(`options.convention must be one of ${conventionNames.map((c) => `'${c}'`).join(', ')}, got ${show(o.convention)}`);
  }
  const knobs: ConventionKnobs = Object.freeze({
    decay: o.decay === undefined ? conventions[o.convention].decay : pick('decay', o.decay, decayModes),
    biasCorrection: checkBoolean('biasCorrection', o.biasCorrection) ?? conventions[o.convention].biasCorrection,
    epsilonHat: checkBoolean('epsilonHat', o.epsilonHat) ?? conventions[o.convention].epsilonHat,
    amsgrad: checkBoolean('amsgrad', o.amsgrad) ?? conventions[o.convention].amsgrad,
    cautiousWeightDecay: checkBoolean('cautiousWeightDecay', o.cautiousWeightDecay) ?? conventions[o.convention].cautiousWeightDecay,
  });
  if (knobs.cautiousWeightDecay && knobs.decay === 'l2') {
    throw new RangeError(`options.cautiousWeightDecay needs a decay to mask, and decay 'l2' (convention ${show(o.convention)}) adds λ·p to the gradient instead: use a decoupled convention`);
  }
  const lr = checkNumber('lr', o.lr, (x) => x >= 0, 'a finite number >= 0');
  if (!Array.isArray(o.betas) || o.betas.length !== 2) throw new RangeError(`options.betas must be [beta1, beta2], got ${show(o.betas)}`);
  o.betas.forEach((b, i) => checkNumber(`betas[${i}]`, b, (x) => x >= 0 && x < 1, 'in [0, 1)'));
  const eps = checkNumber('eps', o.eps, (x) => x >= 0, 'a finite number >= 0');
  const clipGlobalNorm = o.clipGlobalNorm === undefined ? undefined : checkNumber('clipGlobalNorm', o.clipGlobalNorm, (x) => x > 0, 'a finite number > 0');
  const clipValue = o.clipValue === undefined ? undefined : checkNumber('clipValue', o.clipValue, (x) => x > 0, 'a finite number > 0');
  const onNonFinite = pick('onNonFinite', o.onNonFinite, nonFinitePolicies);
  const kernel = pick('kernel', o.kernel, kernelChoices);

  const scheduleInput = o.schedule;
  if (typeof scheduleInput === 'string' && !scheduleNames.includes(scheduleInput as ScheduleName)) {
    throw new RangeError(`options.schedule must be one of ${scheduleNames.map((s) => `'${s}'`).join(', ')}, got ${show(scheduleInput)}`);
  }
  const schedule = validateScheduleOptions(
    typeof scheduleInput === 'string' ? { name: scheduleInput as ScheduleName, lr } : { ...scheduleInput, lr },
    'options.schedule',
  );
  const peakMultiplier = createSchedule(schedule).peakMultiplier;
  if (knobs.decay === 'corrected' && !(lr * peakMultiplier > 0)) {
    throw new RangeError(
      `options.decay 'corrected' (convention ${show(o.convention)}) decays by λ·lr_t²/lr_max, and lr_max, the schedule's peak lr, is 0 ` +
        `(lr ${lr} × peak multiplier ${peakMultiplier} of '${schedule.name}' with warmupSteps ${schedule.warmupSteps}, totalSteps ${schedule.totalSteps}): nothing to divide by`,
    );
  }
  if (given.weightDecay !== undefined && given.weightDecayTimescale !== undefined) {
    throw new RangeError('options.weightDecay and options.weightDecayTimescale both set λ: give one of them');
  }
  const weightDecayTimescale = given.weightDecayTimescale === undefined ? null : resolveTimescale(given.weightDecayTimescale, knobs.decay, lr, peakMultiplier);
  const weightDecay = weightDecayTimescale?.weightDecay ?? checkNumber('weightDecay', o.weightDecay, (x) => x >= 0, 'a finite number >= 0');
  const weightDecaySchedule = resolveDecaySchedule(o.weightDecaySchedule ?? 'constant');
  const decayTable = compileDecayTable(names, weightDecay, o.excludeFromWeightDecay, o.paramGroups ?? []);
  return Object.freeze({
    convention: o.convention,
    knobs,
    lr,
    schedule,
    peakMultiplier,
    betas: [o.betas[0], o.betas[1]] as const,
    eps,
    weightDecay,
    weightDecayTimescale,
    weightDecaySchedule,
    decayTable,
    clipGlobalNorm,
    clipValue,
    onNonFinite,
    kernel,
  });
}

/** 'lr', or a schedule name or options (checked like the lr schedule, with lr 1: only its multiplier is used). */
function resolveDecaySchedule(input: unknown): 'lr' | Readonly<Required<ScheduleOptions>> {
  if (input === 'lr') return 'lr';
  if (typeof input === 'string' && !scheduleNames.includes(input as ScheduleName)) {
    throw new RangeError(`options.weightDecaySchedule must be 'lr' or one of ${scheduleNames.map((s) => `'${s}'`).join(', ')}, got ${show(input)}`);
  }
  const options = typeof input === 'string' ? { name: input as ScheduleName } : (input as ScheduleOptions);
  if (options !== null && typeof options === 'object' && 'lr' in options) throw new RangeError('options.weightDecaySchedule.lr is not an option: the schedule multiplies λ');
  return validateScheduleOptions(typeof options === 'object' && options !== null ? { ...options, lr: 1 } : options, 'options.weightDecaySchedule');
}
