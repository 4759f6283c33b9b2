// createOptimizer's options: the math (src/optim/options.ts) plus what concerns memory and threads: the
// initial values, the thread count, gradient slots, dispatch and shard size. Everything is checked here,
// before any memory is allocated or any thread started.

import { kMaxGradSlots } from '../memory/control.js';
import { kAlignFloats } from '../memory/layout.js';
import { adamwDefaults, adamwKeys, checkNumber, pick, resolveAdamwOptions, show, stripUndefined, type AdamwOptions, type ResolvedAdamw } from '../optim/options.js';
import { checkThreads, checkWorkerMemory, defaultThreads } from './pool.js';
import type { ExtensionInit } from './worker-protocol.js';

/** Initial parameter values by name: a record, a Map, or [name, values] pairs (order = layout order). */
export type ParamsInput =
  | Readonly<Record<string, ArrayLike<number>>>
  | ReadonlyMap<string, ArrayLike<number>>
  | readonly (readonly [string, ArrayLike<number>])[];

export type Dispatch = 'auto' | 'pool' | 'inline';

export interface OptimizerOptions extends AdamwOptions {
  /** Initial values, copied into shared memory (the optimizer keeps no reference to them). */
  params: ParamsInput;
  /** Worker threads. Default os.availableParallelism(). */
  threads?: number;
  /** Gradient slots (replicas). step() uses their mean. Default 1. */
  gradSlots?: number;
  /** Run shard tasks on the pool, inline on the calling thread, or pick by size ('auto', default). */
  dispatch?: Dispatch;
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
  ...adamwDefaults,
  gradSlots: 1,
  dispatch: 'auto' as Dispatch,
  startStep: 0,
});

const knownKeys: ReadonlySet<string> = new Set([
  ...adamwKeys,
  ...(['params', 'threads', 'gradSlots', 'dispatch', 'maxShardParams', 'startStep', 'failAt', 'workerExtensions', 'workerMemoryMb'] satisfies (keyof OptimizerOptions)[]),
]);

/** The checked options. The initial values are not among them: they are copied in once, then dropped. */
export interface ResolvedOptions extends ResolvedAdamw {
  /** Tensor names and element counts, in layout order. */
  readonly tensors: readonly { readonly name: string; readonly size: number }[];
  readonly threads: number;
  readonly gradSlots: number;
  readonly dispatch: Dispatch;
  readonly maxShardParams: number | undefined;
  readonly startStep: number;
  readonly failAt: OptimizerOptions['failAt'];
  readonly workerExtensions: OptimizerOptions['workerExtensions'];
  readonly workerMemoryMb: number | undefined;
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

function checkParams(params: unknown): Array<[string, ArrayLike<number>]> {
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
  return entries;
}

/** Check every option; returns the resolved options and, apart, the initial values to copy in. */
export function resolveOptions(options: OptimizerOptions): { options: ResolvedOptions; initial: readonly ArrayLike<number>[] } {
  if (options === null || typeof options !== 'object') throw new TypeError(`createOptimizer needs an options object, got ${show(options)}`);
  for (const key of Object.keys(options)) {
    if (!knownKeys.has(key)) throw new RangeError(`options.${key} is not an option of createOptimizer (known: ${[...knownKeys].join(', ')})`);
  }
  const o = { ...optimizerDefaults, ...stripUndefined(options) };
  const threads = o.threads === undefined ? defaultThreads() : checkThreads(o.threads);
  const gradSlots = checkNumber('gradSlots', o.gradSlots, (x) => Number.isInteger(x) && x >= 1 && x <= kMaxGradSlots, `an integer from 1 to ${kMaxGradSlots}`);
  const dispatch = pick('dispatch', o.dispatch, ['auto', 'pool', 'inline']);
  const maxShardParams =
    o.maxShardParams === undefined
      ? undefined
      : checkNumber('maxShardParams', o.maxShardParams, (x) => Number.isInteger(x) && x >= kAlignFloats && x % kAlignFloats === 0, `a positive multiple of ${kAlignFloats}`);
  const startStep = checkNumber('startStep', o.startStep, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
  const workerMemoryMb = o.workerMemoryMb === undefined ? undefined : checkWorkerMemory(o.workerMemoryMb);
  const entries = checkParams(o.params);
  // The math options as given (not merged with the defaults here): weightDecay and weightDecayTimescale
  // exclude each other only when both were given.
  const math = resolveAdamwOptions(options, entries.map(([name]) => name));
  return {
    options: Object.freeze({
      ...math,
      tensors: Object.freeze(entries.map(([name, values]) => Object.freeze({ name, size: values.length }))),
      threads,
      gradSlots,
      dispatch,
      maxShardParams,
      startStep,
      failAt: o.failAt,
      workerExtensions: o.workerExtensions,
      workerMemoryMb,
    }),
    initial: entries.map(([, values]) => values),
  };
}
