// Training configs (config/*.json), validated with zod. An unknown key or a wrong type is a one-line error
// that names the file and the key: `config config/x.json: optimizer.lr: expected number, received string`.
// `--set KEY=VALUE` overrides (train, compare) are written into the raw config before the same checks, and
// a problem they cause names the --set: `config config/x.json (--set optimizer.lr=fast): optimizer.lr: …`.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { conventionNames } from '../optim/conventions.js';
import { kernelChoices } from '../kernels/shard-kernels.js';
import { adamwDefaults } from '../optim/options.js';
import { scheduleNames } from '../optim/schedules.js';
import { iterationsPerEpoch } from '../optim/weight-decay.js';
import type { OptimizerOptions } from '../parallel/optimizer-options.js';
import { kMinWorkerMemoryMb } from '../parallel/pool.js';
import { builtinModels } from '../models/model-module.js';
import type { Checkpoint } from '../checkpoint/open.js';
import { oneLine } from '../util/one-line.js';
import { engineKinds } from './engine.js';

const int = (min: number) => z.number().int().min(min);
const nonNegative = z.number().min(0);

const scheduleSchema = z.union([
  z.enum(scheduleNames),
  z.strictObject({
    name: z.enum(scheduleNames),
    warmupSteps: int(0).optional(),
    /** Default: the run's `steps`. */
    totalSteps: int(0).optional(),
    power: z.number().optional(),
    endLr: nonNegative.optional(),
    cycles: z.number().optional(),
  }),
]);

/** τ of weightDecayTimescale, in one unit; epochs become iterations with the data set size (the trainer's). */
const timescaleSchema = z
  .strictObject({ epochs: z.number().positive().optional(), iterations: z.number().positive().optional() })
  .refine((o) => (o.epochs === undefined) !== (o.iterations === undefined), { message: 'give τ in one unit: { "epochs": τ } or { "iterations": τ }' });

// Defaults and enums come from the optimizer (src/optim/options.ts): one copy of each.
const optimizerObject = z.strictObject({
  convention: z.enum(conventionNames).default(adamwDefaults.convention),
  lr: nonNegative.default(adamwDefaults.lr),
  schedule: scheduleSchema.default(adamwDefaults.schedule),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([...adamwDefaults.betas]),
  eps: nonNegative.default(adamwDefaults.eps),
  /** Default 0.01, unless weightDecayTimescale sets λ. */
  weightDecay: nonNegative.optional(),
  /** λ = 1/(r_peak·τ_iter) (src/optim/weight-decay.ts); τ in epochs or iterations. */
  weightDecayTimescale: timescaleSchema.optional(),
  /** 'constant' (default), 'lr' (λ follows the lr schedule's multiplier), or a schedule of its own (its totalSteps defaults to `steps`). */
  weightDecaySchedule: z.union([z.literal('lr'), scheduleSchema]).optional(),
  /** Decay only where the update and the parameter agree in sign (not with l2 / caffe). */
  cautiousWeightDecay: z.boolean().optional(),
  /** Regex strings (search semantics), or 'bert' / 'hf'. */
  excludeFromWeightDecay: z.union([z.enum(['bert', 'hf']), z.array(z.string())]).optional(),
  clipGlobalNorm: z.number().positive().optional(),
  clipValue: z.number().positive().optional(),
  amsgrad: z.boolean().optional(),
  kernel: z.enum(kernelChoices).default(adamwDefaults.kernel),
  /**
   * A NaN/Inf loss or gradient: stop with an error naming step, replica and examples, or skip the step and
   * take the next batch. ('ignore', the optimizer's third policy, has no place in training: a NaN would reach the params.)
   */
  onNonFinite: z.enum(['throw', 'skip']).default(adamwDefaults.onNonFinite as 'throw'),
  /** With 'skip': this many skipped steps in a row stop the run (the params are no longer producing finite gradients). */
  maxConsecutiveSkips: int(1).default(5),
});

const optimizerSchema = optimizerObject
  .refine((o) => o.weightDecay === undefined || o.weightDecayTimescale === undefined, {
    message: 'weightDecay and weightDecayTimescale both set λ: give one of them',
    path: ['weightDecayTimescale'],
  })
  .transform((o) => (o.weightDecayTimescale === undefined ? { ...o, weightDecay: o.weightDecay ?? adamwDefaults.weightDecay } : o));

/** Deeper model options are refused: the run writes its config back as JSON, which recurses. */
const kMaxOptionsDepth = 64;

/** How deeply arrays and objects nest in `value` (0 for a scalar), without recursion. */
function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > kMaxOptionsDepth) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

export const trainConfigSchema = z.strictObject({
  /** Used for the default run directory. */
  name: z.string().min(1).optional(),
  model: z.strictObject({
    /** A built-in model ('char-lm') or a path to a model module, relative to the config file. */
    module: z.string().min(1),
    options: z
      .record(z.string(), z.unknown())
      .refine((o) => nestingDepth(o) <= kMaxOptionsDepth, { message: `nested more than ${kMaxOptionsDepth} levels deep` })
      .default({}),
  }),
  /** Seeds the initial values (via createModel), the data split and the data order. */
  seed: int(0).default(0),
  steps: int(1),
  /** Global batch: examples per optimizer step, over all replicas and accumulation micro-batches. */
  batchSize: int(1),
  /** Gradient slots / replicas. Default: the thread count. */
  replicas: int(1).max(64).optional(),
  accumulateSteps: int(1).default(1),
  /** Pool threads. Default: os.availableParallelism(). */
  threads: int(1).optional(),
  /**
   * What computes the gradients: 'shardtrain' (the built-in models' own engine; their default) or 'tfjs'
   * (TensorFlow.js replicas: every model module, and the built-ins when asked). Default: by the model.
   */
  engine: z.enum(engineKinds).optional(),
  /** The tfjs engine's backend. */
  backend: z.enum(['wasm', 'cpu']).default('wasm'),
  /** Heap limit of each worker thread (MB): a replica that runs out fails the step instead of aborting the process. */
  workerMemoryMb: int(kMinWorkerMemoryMb).optional(),
  /** Fail a step whose replicas have not all answered after this many seconds (an endless loop in model code). */
  stepTimeoutSec: z.number().positive().optional(),
  optimizer: optimizerSchema.default(() => optimizerSchema.parse({})),
  /** Write a checkpoint every N steps (and always at the end). Default: only at the end. */
  checkpointEvery: int(1).optional(),
  /** Checkpoints kept in the run directory (checkpoint-<step>.safetensors): the newest keepLast. */
  keepLast: int(1).default(3),
  /** Append a metrics line every N steps. */
  logEvery: int(1).default(10),
  /** Held-out examples per forward pass when evaluating. */
  evalBatch: int(1).default(2048),
  /** Evaluate every N steps (and always at the end). Default: only at the end. */
  evalEvery: int(1).optional(),
  /** Names sampled at the end (when the model module exports sample()). */
  samples: int(0).default(10),
});

export type TrainConfigInput = z.input<typeof trainConfigSchema>;
export type TrainConfig = z.output<typeof trainConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    // Keys, paths and JSON.parse's messages (which quote the text) can hold line breaks.
    super(oneLine(message));
    this.name = 'ConfigError';
  }
}

const kPlainKey = /^[A-Za-z_$][\w$]*$/;

/** `optimizer.betas[1]`; a key that is not an identifier is quoted (`model.options["a.b"]`), so the path reads back unambiguously. */
function keyPath(path: readonly PropertyKey[]): string {
  const part = (p: PropertyKey, i: number): string => {
    if (typeof p === 'number') return `[${p}]`;
    const key = String(p);
    return kPlainKey.test(key) ? `${i > 0 ? '.' : ''}${key}` : `[${JSON.stringify(key)}]`;
  };
  return path.map(part).join('') || '(top level)';
}

/** One line for the first problem zod found: where, which key, what is wrong. */
export function formatConfigError(where: string, error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => keyPath([...issue.path, k]));
    return `${where}: unknown key ${keys.join(', ')}`;
  }
  return `${where}: ${keyPath(issue.path)}: ${issue.message}`;
}

/** Validate a config object (defaults filled in), after the `--set KEY=VALUE` overrides; throws ConfigError with one line. */
export function parseConfig(raw: unknown, where = 'config', sets: readonly string[] = []): TrainConfig {
  const overrides = sets.map(parseOverride);
  const result = trainConfigSchema.safeParse(applyOverrides(raw, overrides));
  if (result.success) return result.data;
  // A problem under (or above) an overridden key is the override's: say which --set it came from.
  const issue = result.error.issues[0];
  const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
  const related = (a: readonly PropertyKey[], b: readonly string[]): boolean => a.slice(0, b.length).every((k, i) => String(k) === b[i]) || b.slice(0, a.length).every((k, i) => k === String(a[i]));
  const culprit = overrides.findLast((o) => paths.some((p) => related(p, o.path)));
  throw new ConfigError(formatConfigError(culprit ? `${where} (--set ${culprit.flag})` : where, result.error));
}

/** One `--set KEY=VALUE`: a dotted path into the config and a value (JSON where it parses as JSON, else the text). */
export interface ConfigOverride {
  /** As given, for messages. */
  readonly flag: string;
  readonly path: readonly string[];
  readonly value: unknown;
}

export function parseOverride(flag: string): ConfigOverride {
  const eq = flag.indexOf('=');
  if (eq < 0) throw new ConfigError(`--set ${flag}: expected KEY=VALUE (e.g. --set optimizer.lr=3e-4)`);
  const path = flag.slice(0, eq).split('.');
  if (path.some((k) => k.trim() === '')) throw new ConfigError(`--set ${flag}: ${JSON.stringify(flag.slice(0, eq))} is not a dotted key path (e.g. model.options.layers)`);
  const text = flag.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text; // not JSON: a string, so that --set name=my-run needs no quotes
  }
  return { flag, path, value };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object';
}

/**
 * A copy of `raw` with each override written in turn (a later one wins). Missing objects on the way are
 * created; a path through a value that is not an object or array is refused, naming the --set.
 */
export function applyOverrides(raw: unknown, overrides: readonly ConfigOverride[]): unknown {
  if (overrides.length === 0 || !isObject(raw) || Array.isArray(raw)) return raw; // nothing to do, or zod's own message for a bad root
  const root = structuredClone(raw);
  for (const { flag, path, value } of overrides) {
    let node: Record<string, unknown> | unknown[] = root;
    for (let i = 0; i < path.length; i++) {
      const key = path[i];
      const last = i === path.length - 1;
      if (Array.isArray(node)) {
        const index = Number(key);
        if (!/^(0|[1-9][0-9]*)$/.test(key) || index >= node.length + (last ? 1 : 0)) {
          throw new ConfigError(`--set ${flag}: ${path.slice(0, i).join('.')} is a list of ${node.length}, and ${JSON.stringify(key)} is not an index into it`);
        }
        if (last) node[index] = value;
        else node = step(node[index], flag, path.slice(0, i + 1), (child) => (node as unknown[])[index] = child);
      } else if (last) {
        // defineProperty, not assignment: a key such as __proto__ becomes an own key (which zod then refuses).
        Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        const parent: Record<string, unknown> = node;
        node = step(Object.hasOwn(parent, key) ? parent[key] : undefined, flag, path.slice(0, i + 1), (child) => Object.defineProperty(parent, key, { value: child, enumerable: true, writable: true, configurable: true }));
      }
    }
  }
  return root;
}

/** The container at `at` on an override's way down: itself, a new object where there is none, or an error. */
function step(child: unknown, flag: string, at: readonly string[], create: (child: Record<string, unknown>) => void): Record<string, unknown> | unknown[] {
  if (child === undefined) {
    const fresh: Record<string, unknown> = {};
    create(fresh);
    return fresh;
  }
  if (!isObject(child)) throw new ConfigError(`--set ${flag}: ${at.join('.')} is ${JSON.stringify(child)}, not an object to set a key in`);
  return child;
}

/** Read and validate a JSON config file, with `--set KEY=VALUE` overrides applied before the checks. */
export function loadConfigFile(path: string, sets: readonly string[] = []): TrainConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${path}: not valid JSON (${(err as Error).message})`);
  }
  const config = parseConfig(raw, `config ${path}`, sets);
  // A model module path is relative to the config file (to the working directory when a --set gave it);
  // store it absolute so a resumed run finds it too.
  const spec = config.model.module;
  const fromSet = sets.map(parseOverride).some((o) => o.path.join('.') === 'model.module' || (o.path.length === 1 && o.path[0] === 'model'));
  if (!Object.hasOwn(builtinModels, spec) && !spec.startsWith('file:') && !isAbsolute(spec)) {
    return { ...config, model: { ...config.model, module: resolve(fromSet ? process.cwd() : dirname(path), spec) } };
  }
  return config;
}

/**
 * The warmup a run uses: a schedule whose totalSteps is left to the run's `steps` (a short `--steps`) may
 * have a warmup longer than the run; it is then cut to the run's length rather than refused.
 */
function warmupIsCut(config: TrainConfig): boolean {
  const s = config.optimizer.schedule;
  return typeof s !== 'string' && s.totalSteps === undefined && s.warmupSteps !== undefined && s.warmupSteps > config.steps;
}

/** One line saying the warmup was cut to fit the run, or null when it was not. */
export function warmupCutNote(config: TrainConfig): string | null {
  const s = config.optimizer.schedule;
  if (typeof s === 'string' || !warmupIsCut(config)) return null;
  return `note: optimizer.schedule.warmupSteps (${s.warmupSteps}) is longer than the run (${config.steps} steps): warmup cut to ${config.steps} steps`;
}

/**
 * The optimizer options of a training run (everything but params, threads, slots and start step, which the
 * trainer adds). A schedule's totalSteps defaults to the run's steps, and its warmup is fitted to them; so
 * does the weight-decay schedule's totalSteps. A timescale in epochs becomes { epochs, iterationsPerEpoch }
 * with M = training examples / global batch when `data` is given (the trainer knows it once the model has
 * loaded its data; without it the optimizer refuses epochs in one line).
 */
export function optimizerOptionsFromConfig(config: TrainConfig, data?: { readonly train: number }): Omit<OptimizerOptions, 'params'> {
  const o = config.optimizer;
  const schedule: OptimizerOptions['schedule'] =
    typeof o.schedule === 'string'
      ? { name: o.schedule, totalSteps: config.steps }
      : { ...o.schedule, totalSteps: o.schedule.totalSteps ?? config.steps, ...(warmupIsCut(config) ? { warmupSteps: config.steps } : {}) };
  const d = o.weightDecaySchedule;
  const weightDecaySchedule: OptimizerOptions['weightDecaySchedule'] =
    d === undefined || d === 'lr' ? d : typeof d === 'string' ? { name: d, totalSteps: config.steps } : { ...d, totalSteps: d.totalSteps ?? config.steps };
  const t = o.weightDecayTimescale;
  const weightDecayTimescale: OptimizerOptions['weightDecayTimescale'] =
    t === undefined
      ? undefined
      : t.iterations !== undefined
        ? { iterations: t.iterations }
        : { epochs: t.epochs!, ...(data ? { iterationsPerEpoch: iterationsPerEpoch(data.train, config.batchSize) } : {}) };
  return {
    convention: o.convention,
    lr: o.lr,
    schedule,
    betas: o.betas,
    eps: o.eps,
    weightDecay: o.weightDecay,
    weightDecayTimescale,
    weightDecaySchedule,
    cautiousWeightDecay: o.cautiousWeightDecay,
    excludeFromWeightDecay: o.excludeFromWeightDecay,
    clipGlobalNorm: o.clipGlobalNorm,
    clipValue: o.clipValue,
    amsgrad: o.amsgrad,
    kernel: o.kernel,
    // The trainer decides between throwing and skipping, after naming replicas and examples.
    onNonFinite: 'skip',
    workerMemoryMb: config.workerMemoryMb,
  };
}

/** The config stored in a checkpoint, validated (for `--resume` without `--config`, `sample`, `export`), with `--set` overrides. */
export function checkpointConfig(checkpoint: Checkpoint, sets: readonly string[] = []): TrainConfig {
  return checkpoint.config((raw, where) => parseConfig(raw, where, sets));
}
