// Optimizer options, the piscina way: an interface (all optional but params) → frozen defaults → one merge
// by spread → a flat run of checks whose messages name the field and the value. Everything is checked here,
// before any memory is allocated or any thread started.

import { checkThreads, checkWorkerMemory, defaultThreads } from '../parallel/pool.js';
import type { ExtensionInit, KernelName } from '../parallel/worker-protocol.js';
import { conventions, conventionNames, decayModes, isConventionName, type ConventionKnobs, type ConventionName, type DecayMode } from './conventions.js';
import { compileDecayTable, type ExclusionRule, type ParamGroup, type TensorDecayEntry } from './decay-rules.js';
import { scheduleNames, validateScheduleOptions, type ScheduleName, type ScheduleOptions } from './schedules.js';
import { kAlignFloats } from '../memory/layout.js';

/** Initial parameter values by name: a record, a Map, or [name, values] pairs (order = layout order). */
export type ParamsInput =
  | Readonly<Record<string, ArrayLike<number>>>
  | ReadonlyMap<string, ArrayLike<number>>
  | readonly (readonly [string, ArrayLike<number>])[];

export type NonFinitePolicy = 'throw' | 'skip' | 'ignore';

export interface OptimizerOptions {
  /** Initial values, copied into shared memory. */
  params: ParamsInput;
  /** Worker threads. Default os.availableParallelism(). */
  threads?: number;
  /** A named set of knobs (see conventions.ts). Default 'pytorch'. */
  convention?: ConventionName;
  /** Override one knob of the convention. */
  decay?: DecayMode;
  biasCorrection?: boolean;
  epsilonHat?: boolean;
  amsgrad?: boolean;
  /** Base learning rate. Default 1e-3. */
  lr?: number;
  /** A schedule name, or its options (its `lr` is taken from `lr`). Default constant. */
  schedule?: ScheduleName | Omit<ScheduleOptions, 'lr'>;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8 (torch). Keras uses 1e-7 and BERT 1e-6: pass them to match those exactly. */
  eps?: number;
  /** λ. Default 0.01 (torch AdamW). */
  weightDecay?: number;
  excludeFromWeightDecay?: ExclusionRule;
  paramGroups?: readonly ParamGroup[];
  /** Clip the replica-mean gradient to this global L2 norm (torch clip_grad_norm_). */
  clipGlobalNorm?: number;
  /** Clip every gradient element to [−c, c] (Keras clipvalue, mxnet clip_gradient), before the norm clip. */
  clipValue?: number;
  /** A NaN/±Inf gradient: throw naming the tensor (default), skip the step, or apply it unchecked ('ignore': saves one read of the gradients). */
  onNonFinite?: NonFinitePolicy;
  /** Gradient slots (replicas). step() uses their mean. Default 1. */
  gradSlots?: number;
  /** Shard kernel. Default 'auto': WebAssembly SIMD where available, else plain JS. */
  kernel?: KernelName | 'auto';
  /** Run shard tasks on the pool, inline on the calling thread, or pick by size ('auto', default). */
  dispatch?: 'auto' | 'pool' | 'inline';
  /** Largest shard, in parameters. Default: what fits in one 4 GiB wasm32 memory. Small values force many shards (tests). */
  maxShardParams?: number;
  /** First step (to continue a run). Default 0. */
  startStep?: number;
  /** Heap limit of each pool thread in MB (see PoolOptions.workerMemoryMb). Default: V8's. */
  workerMemoryMb?: number;
  /** Extra per-thread handlers loaded into the optimizer's pool (the trainer's replicas use this). */
  workerExtensions?: Readonly<Record<string, ExtensionInit>>;
  /** @internal fault injection for tests. */
  failAt?: { readonly phase: 'norm' | 'update'; readonly part: number };
}

export const optimizerDefaults = Object.freeze({
  convention: 'pytorch' as ConventionName,
  lr: 1e-3,
  betas: Object.freeze([0.9, 0.999]) as readonly [number, number],
  eps: 1e-8,
  weightDecay: 0.01,
  onNonFinite: 'throw' as NonFinitePolicy,
  gradSlots: 1,
  kernel: 'auto' as KernelName | 'auto',
  dispatch: 'auto' as const,
  startStep: 0,
});

const knownKeys: ReadonlySet<string> = new Set([
  'params', 'threads', 'convention', 'decay', 'biasCorrection', 'epsilonHat', 'amsgrad', 'lr', 'schedule', 'betas', 'eps',
  'weightDecay', 'excludeFromWeightDecay', 'paramGroups', 'clipGlobalNorm', 'clipValue', 'onNonFinite', 'gradSlots', 'kernel',
  'dispatch', 'maxShardParams', 'startStep', 'failAt', 'workerExtensions', 'workerMemoryMb',
] satisfies (keyof OptimizerOptions)[]);

export interface ResolvedOptions {
  readonly names: readonly string[];
  readonly initial: readonly ArrayLike<number>[];
  readonly threads: number;
  readonly convention: ConventionName;
  readonly knobs: ConventionKnobs;
  readonly lr: number;
  readonly schedule: Readonly<Required<ScheduleOptions>>;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly decayTable: readonly TensorDecayEntry[];
  readonly clipGlobalNorm: number | undefined;
  readonly clipValue: number | undefined;
  readonly onNonFinite: NonFinitePolicy;
  readonly gradSlots: number;
  readonly kernel: KernelName | 'auto';
  readonly dispatch: 'auto' | 'pool' | 'inline';
  readonly maxShardParams: number | undefined;
  readonly startStep: number;
  readonly failAt: OptimizerOptions['failAt'];
  readonly workerExtensions: OptimizerOptions['workerExtensions'];
  readonly workerMemoryMb: number | undefined;
}

function isFiniteNumber(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

function show(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(show).join(', ')}]`;
  return String(x);
}

function checkNumber(key: string, x: unknown, ok: (n: number) => boolean, expected: string): number {
  if (!isFiniteNumber(x) || !ok(x)) throw new RangeError(`options.${key} must be ${expected}, got ${show(x)}`);
  return x;
}

function checkBoolean(key: string, x: unknown): boolean | undefined {
  if (x !== undefined && typeof x !== 'boolean') throw new TypeError(`options.${key} must be true or false, got ${show(x)}`);
  return x;
}

function paramEntries(params: unknown): Array<[string, ArrayLike<number>]> {
  if (params === null || typeof params !== 'object') {
    throw new TypeError(`options.params must be an object of named Float32Arrays, got ${show(params)}`);
  }
  if (params instanceof Map) return [...params.entries()];
  if (Array.isArray(params)) {
    return params.map((entry, i) => {
      if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError(`options.params[${i}] must be a [name, values] pair`);
      return [entry[0], entry[1]] as [string, ArrayLike<number>];
    });
  }
  return Object.entries(params as Record<string, ArrayLike<number>>);
}

function checkParams(params: unknown): { names: string[]; initial: ArrayLike<number>[] } {
  const entries = paramEntries(params);
  if (entries.length === 0) throw new RangeError('options.params is empty: the model has no tensors');
  const seen = new Set<string>();
  for (const [name, values] of entries) {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError(`options.params: tensor names must be non-empty strings, got ${show(name)}`);
    if (seen.has(name)) throw new RangeError(`options.params: tensor name "${name}" is used twice`);
    seen.add(name);
    const ok = ArrayBuffer.isView(values) || Array.isArray(values);
    if (!ok || typeof (values as ArrayLike<number>).length !== 'number') {
      throw new TypeError(`options.params["${name}"] must be a Float32Array (or array of numbers), got ${show(values)}`);
    }
    if (values.length === 0) throw new RangeError(`options.params["${name}"] has no elements`);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new RangeError(`options.params["${name}"][${i}] is ${values[i]}: initial values must be finite`);
    }
  }
  return { names: entries.map((e) => e[0]), initial: entries.map((e) => e[1]) };
}

function pick<T extends string>(key: string, x: unknown, allowed: readonly T[]): T {
  if (typeof x !== 'string' || !allowed.includes(x as T)) {
    throw new RangeError(`options.${key} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${show(x)}`);
  }
  return x as T;
}

export function resolveOptions(options: OptimizerOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`createOptimizer needs an options object, got ${show(options)}`);
  for (const key of Object.keys(options)) {
    if (!knownKeys.has(key)) throw new RangeError(`options.${key} is not an option of createOptimizer (known: ${[...knownKeys].join(', ')})`);
  }
  const o = { ...optimizerDefaults, ...stripUndefined(options) };

  if (!isConventionName(o.convention)) {
    throw new RangeError(`options.convention must be one of ${conventionNames.map((c) => `'${c}'`).join(', ')}, got ${show(o.convention)}`);
  }
  const knobs: ConventionKnobs = Object.freeze({
    decay: o.decay === undefined ? conventions[o.convention].decay : pick('decay', o.decay, decayModes),
    biasCorrection: checkBoolean('biasCorrection', o.biasCorrection) ?? conventions[o.convention].biasCorrection,
    epsilonHat: checkBoolean('epsilonHat', o.epsilonHat) ?? conventions[o.convention].epsilonHat,
    amsgrad: checkBoolean('amsgrad', o.amsgrad) ?? conventions[o.convention].amsgrad,
  });

  const threads = o.threads === undefined ? defaultThreads() : checkThreads(o.threads);
  const lr = checkNumber('lr', o.lr, (x) => x >= 0, 'a finite number >= 0');
  if (!Array.isArray(o.betas) || o.betas.length !== 2) throw new RangeError(`options.betas must be [beta1, beta2], got ${show(o.betas)}`);
  o.betas.forEach((b, i) => checkNumber(`betas[${i}]`, b, (x) => x >= 0 && x < 1, 'in [0, 1)'));
  const eps = checkNumber('eps', o.eps, (x) => x >= 0, 'a finite number >= 0');
  const weightDecay = checkNumber('weightDecay', o.weightDecay, (x) => x >= 0, 'a finite number >= 0');
  const clipGlobalNorm = o.clipGlobalNorm === undefined ? undefined : checkNumber('clipGlobalNorm', o.clipGlobalNorm, (x) => x > 0, 'a finite number > 0');
  const clipValue = o.clipValue === undefined ? undefined : checkNumber('clipValue', o.clipValue, (x) => x > 0, 'a finite number > 0');
  const onNonFinite = pick('onNonFinite', o.onNonFinite, ['throw', 'skip', 'ignore']);
  const gradSlots = checkNumber('gradSlots', o.gradSlots, (x) => Number.isInteger(x) && x >= 1 && x <= 64, 'an integer from 1 to 64');
  const kernel = pick('kernel', o.kernel, ['auto', 'js', 'wasm']);
  const dispatch = pick('dispatch', o.dispatch, ['auto', 'pool', 'inline']);
  const maxShardParams =
    o.maxShardParams === undefined
      ? undefined
      : checkNumber('maxShardParams', o.maxShardParams, (x) => Number.isInteger(x) && x >= kAlignFloats && x % kAlignFloats === 0, `a positive multiple of ${kAlignFloats}`);
  const startStep = checkNumber('startStep', o.startStep, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');

  const scheduleInput = o.schedule ?? 'constant';
  if (typeof scheduleInput === 'string' && !scheduleNames.includes(scheduleInput as ScheduleName)) {
    throw new RangeError(`options.schedule must be one of ${scheduleNames.map((s) => `'${s}'`).join(', ')}, got ${show(scheduleInput)}`);
  }
  const schedule = validateScheduleOptions(
    typeof scheduleInput === 'string' ? { name: scheduleInput as ScheduleName, lr } : { ...scheduleInput, lr },
    'options.schedule',
  );

  const { names, initial } = checkParams(o.params);
  const decayTable = compileDecayTable(names, weightDecay, o.excludeFromWeightDecay, o.paramGroups ?? []);

  return Object.freeze({
    names,
    initial,
    threads,
    convention: o.convention,
    knobs,
    lr,
    schedule,
    betas: [o.betas[0], o.betas[1]] as const,
    eps,
    weightDecay,
    decayTable,
    clipGlobalNorm,
    clipValue,
    onNonFinite,
    gradSlots,
    kernel,
    dispatch,
    maxShardParams,
    startStep,
    failAt: o.failAt,
    workerExtensions: o.workerExtensions,
    workerMemoryMb: o.workerMemoryMb === undefined ? undefined : checkWorkerMemory(o.workerMemoryMb),
  });
}

/** `{ lr: undefined }` means "default", as if the key were absent. */
function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
