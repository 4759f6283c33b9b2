// The coordinator. It owns the global step (through the optimizer), the schedule and the exclusion rules
// (optimizer options), and the data order (seed + step); it drives R replicas that live in the optimizer's
// pool threads through an engine (engine.ts: the built-in models' own, or tfjs). One step:
//   1. the engine's tasks in parallel: each replica loads the params from shared memory, computes loss and
//      gradients on its micro-batch slice r (k accumulation micro-batches), writes gradient slot r;
//   2. opt.step(): each thread reduces its shard across the R slots in a fixed order (÷ R) and applies AdamW.
// The params are then visible to every replica for the next step.

import { availableParallelism } from 'node:os';
import type { TensorSpec } from '../memory/layout.js';
import { stateNamesFor, type StateName } from '../memory/shard-states.js';
import { createOptimizer, type ShardedAdamW } from '../parallel/optimizer.js';
import { settleAll } from '../parallel/settle.js';
import { writeCheckpoint } from '../checkpoint/checkpoint.js';
import { Checkpoint } from '../checkpoint/open.js';
import { Gpt2Checkpoint } from '../checkpoint/gpt2-import.js';
import type { InitSource } from '../models/model-module.js';
import { optimizerOptionsFromConfig, parseConfig, ConfigError, type TrainConfig, type TrainConfigInput } from './config.js';
import { DataOrder, type DataPosition } from './data-order.js';
import type { Engine, EvalPart, SampleOptions, ThreadInfo } from './engine.js';
import { createEngine, engineTaskCount } from './engines.js';
import type { EngineFault } from './shardtrain-runner.js';
import { describeNonFinite, type NonFiniteReport } from './non-finite.js';
import { StepGuard, StepTimeoutError, withDeadline } from './step-guard.js';

const kEngineExtension = 'shardtrain.engine';

export interface TrainerOptions {
  /** A training config (as in config/*.json); validated, defaults filled in. */
  config: TrainConfigInput;
  /** Pool threads; overrides config.threads. */
  threads?: number;
  /**
   * Continue from this checkpoint file: params, Adam moments and step (the config must build the same model).
   * A path is opened and verified (header and checksums) first; a Checkpoint already was.
   */
  resume?: string | Checkpoint;
  /** Where the config came from, for error messages. */
  where?: string;
  /** @internal test hook: a failure injected into the shardtrain engine's step (shardtrain-runner.ts). */
  engineFault?: EngineFault;
}

export interface TrainStepResult {
  /** globalStep after this call (unchanged when skipped). */
  readonly step: number;
  /** Mean training loss of the global batch (mean of the replicas' micro-batch means). */
  readonly loss: number;
  readonly lr: number;
  readonly gradNorm: number;
  /** Index of the global batch this step used in the data order. */
  readonly batch: number;
  /** A non-finite loss or gradient made this step a no-op (optimizer.onNonFinite: 'skip'). */
  readonly skipped: boolean;
  /** Steps skipped so far in this run (including before a resume). */
  readonly skippedTotal: number;
  /** What was non-finite, when skipped. */
  readonly nonFinite: NonFiniteReport | null;
}

/** Skip counters kept in a checkpoint's `data` metadata, so a resumed run takes the same batches. */
interface SkipCounters {
  skipped: number;
  consecutive: number;
}

export class Trainer {
  readonly config: TrainConfig;
  readonly tensors: readonly TensorSpec[];
  readonly threads: number;
  readonly replicas: number;
  /** What computes the gradients (train/engine.ts): the built-in models' own engine, or tfjs. */
  readonly engine: Engine;
  readonly optimizer: ShardedAdamW;
  readonly counts: { readonly train: number; readonly eval: number };
  readonly #order: DataOrder;
  readonly #guard: StepGuard;
  readonly #skips: SkipCounters;

  private constructor(init: { config: TrainConfig; threads: number; replicas: number; engine: Engine; optimizer: ShardedAdamW; guard: StepGuard; skips: SkipCounters }) {
    this.config = init.config;
    this.threads = init.threads;
    this.replicas = init.replicas;
    this.engine = init.engine;
    this.tensors = init.engine.tensors;
    this.counts = init.engine.counts;
    this.optimizer = init.optimizer;
    this.#guard = init.guard;
    this.#skips = init.skips;
    this.#order = new DataOrder(this.counts.train, init.config.batchSize, init.config.seed);
  }

  /** Build the model on this thread, check everything, allocate the shared states and start the pool. */
  static async create(options: TrainerOptions): Promise<Trainer> {
    const where = options.where ?? 'config';
    const config = parseConfig(options.config, where);
    const { threads, replicas } = runThreads(config, options.threads, where);
    // A checkpoint is checked (header, checksums, then names and shapes below) before anything is allocated.
    const checkpoint = options.resume === undefined ? null : typeof options.resume === 'string' ? Checkpoint.open(options.resume) : options.resume;
    const startStep = checkpoint?.step ?? 0;
    const skips = checkpoint ? skipCounters(checkpoint.metadata.data, checkpoint.path) : { skipped: 0, consecutive: 0 };

    const guard = new StepGuard(
      engineTaskCount(config, replicas, threads),
      config.stepTimeoutSec === undefined ? undefined : config.stepTimeoutSec * 1000,
      config.workerMemoryMb === undefined ? '' : ` (workerMemoryMb ${config.workerMemoryMb})`,
    );
    const engine = await createEngine({ config, replicas, threads, threadTable: guard.table, where, fault: options.engineFault });
    const { tensors } = engine;
    const optimizerOptions = optimizerOptionsFromConfig(config, engine.counts); // counts: a timescale in epochs needs N
    let optimizer: ShardedAdamW;
    let init: Gpt2Checkpoint | null = null;
    try {
      checkpoint?.check(tensors, stateNamesFor(optimizerOptions.amsgrad === true));
      // A resume continues from its checkpoint: the init file is neither opened nor read then.
      if (checkpoint === null && engine.initSource !== null) init = openInit(engine.initSource, tensors);
      const initial = engine.initialValues();
      optimizer = await createOptimizer({
        ...optimizerOptions,
        params: tensors.map((t, i) => [t.name, initial[i]] as const),
        threads,
        gradSlots: replicas,
        startStep,
        workerExtensions: { [kEngineExtension]: engine.extension },
      });
    } catch (err) {
      await engine.close();
      throw err;
    }
    const trainer = new Trainer({ config, threads, replicas, engine, optimizer, guard, skips });
    engine.attach?.((task) => trainer.#run(task.payload, task.label), { keepThreads: optimizer.runsInline });
    try {
      checkpoint?.readInto(tensors, Object.fromEntries(optimizer.stateNames.map((s) => [s, optimizer.stateViews(s)])));
      // The init file's values replace the initial values before the first step (Adam's moments start at 0).
      init?.readInto(optimizer.params);
      // Every thread loads the engine now (one task each: piscina gives a busy thread no second task), so a
      // broken model module fails here and the first step's deadline does not include the start-up.
      await settleAll(Array.from({ length: threads }, () => trainer.#run(engine.infoTask(), 'loading the model module')));
    } catch (err) {
      await trainer.close();
      throw err;
    }
    return trainer;
  }

  get globalStep(): number {
    return this.optimizer.globalStep;
  }

  /** Steps skipped because of a non-finite loss or gradient (optimizer.onNonFinite: 'skip'), including before a resume. */
  get skippedSteps(): number {
    return this.#skips.skipped;
  }

  /** The next global batch: each step, applied or skipped, takes a fresh one. */
  get batchIndex(): number {
    return this.globalStep + this.#skips.skipped;
  }

  /** Position of the data order after globalStep steps and skippedSteps skips. */
  get dataPosition(): DataPosition {
    return this.#order.position(this.batchIndex);
  }

  /** The engine's worker backend in words (kept for callers of 0.1: `engine shardtrain`, `engine tfjs (backend wasm)`). */
  get backend(): string {
    return this.engine.description;
  }

  #run<T>(payload: unknown, label: string): Promise<T> {
    return this.optimizer.pool.run<T>({ kind: 'ext', extension: kEngineExtension, payload, label });
  }

  /**
   * One data-parallel step at globalStep on the next batch. A worker that throws, dies or (with
   * stepTimeoutSec) does not answer fails the step before the optimizer runs: params, m and v are untouched.
   */
  async step(): Promise<TrainStepResult> {
    const step = this.globalStep + 1;
    const batch = this.batchIndex;
    const tasks = this.engine.gradTasks(batch, step);
    let losses: number[];
    try {
      const run = this.engine.gradRunner?.(tasks, step) ?? ((t) => this.#run<unknown>(t.payload, t.label));
      const results = await this.#guard.all(step, tasks, run, () => this.engine.abandon?.());
      losses = this.engine.replicaLosses(results);
    } catch (err) {
      // A thread may be stuck for good; destroying the pool is the only way to stop it.
      if (err instanceof StepTimeoutError) await this.close();
      throw err;
    }
    let loss = 0;
    for (const l of losses) loss += l; // fixed order: replica 0, 1, …
    loss /= this.replicas;
    // A non-finite loss is refused before the optimizer runs (its gradient would be refused there anyway).
    const r = Number.isFinite(loss) ? await this.optimizer.step() : null;
    if (r !== null && !r.skipped) {
      this.#skips.consecutive = 0;
      return { step: r.step, loss, lr: r.lr, gradNorm: r.gradNorm, batch, skipped: false, skippedTotal: this.#skips.skipped, nonFinite: null };
    }
    const report = await this.#nonFiniteReport(step, batch, losses);
    const o = this.config.optimizer;
    if (o.onNonFinite === 'throw') throw new Error(`non-finite loss or gradient at ${describeNonFinite(report)}; the step was not applied (optimizer.onNonFinite "skip" skips such steps)`);
    this.#skips.skipped++;
    this.#skips.consecutive++;
    if (this.#skips.consecutive >= o.maxConsecutiveSkips) {
      throw new Error(`${this.#skips.consecutive} consecutive steps skipped (non-finite gradients) at ${describeNonFinite(report)} (optimizer.maxConsecutiveSkips ${o.maxConsecutiveSkips})`);
    }
    return { step: this.globalStep, loss, lr: this.optimizer.lr, gradNorm: r?.gradNorm ?? Number.NaN, batch, skipped: true, skippedTotal: this.#skips.skipped, nonFinite: report };
  }

  /** Which replicas went non-finite and which of their examples do it alone (current params). */
  async #nonFiniteReport(step: number, batch: number, losses: readonly number[]): Promise<NonFiniteReport> {
    const perReplica = this.config.batchSize / this.replicas;
    const replicas = [];
    for (const [replica, loss] of losses.entries()) {
      const tensor = this.optimizer.firstNonFiniteGradient(replica)?.tensor ?? null;
      if (Number.isFinite(loss) && tensor === null) continue;
      const examples = Array.from(this.#order.slice(batch, replica * perReplica, perReplica));
      replicas.push({ replica, loss, tensor, examples, culprits: await this.engine.culprits(this.optimizer.params, examples) });
    }
    return { step, batch, replicas };
  }

  /** Mean loss over the held-out examples, split across the replicas' threads. */
  async evaluate(): Promise<number> {
    await this.engine.release?.();
    const n = this.counts.eval;
    const tasks = this.engine.evalTasks();
    const runs = tasks.map((t) => this.#run<EvalPart>(t.payload, t.label));
    // stepTimeoutSec for every step's worth of examples a part holds: a forward pass over them costs no
    // more than a step (forward and backward) over as many.
    const c = this.config;
    const steps = Math.max(1, Math.ceil(Math.ceil(n / this.threads) / (c.batchSize / this.replicas)));
    const timeoutMs = c.stepTimeoutSec === undefined ? undefined : c.stepTimeoutSec * 1000 * steps;
    let results: EvalPart[];
    try {
      results = await withDeadline(runs, timeoutMs, (parts) =>
        `evaluation at step ${this.globalStep}: no answer within ${timeoutMs! / 1000} s (stepTimeoutSec × ${steps} steps' worth of held-out examples) from evaluation part${parts.length > 1 ? 's' : ''} ${parts.join(', ')}; the worker threads were stopped`,
      );
    } catch (err) {
      if (err instanceof StepTimeoutError) await this.close();
      throw err;
    }
    let sum = 0;
    for (const r of results) sum += r.lossSum;
    return sum / n;
  }

  /** Text samples from the current params ([] when the model cannot sample). */
  sample(count = this.config.samples, seed = this.config.seed, options: SampleOptions = {}): Promise<string[]> {
    return this.engine.sample(this.optimizer.params, count, seed, options);
  }

  /** Tokens per training example for sequence models (token windows), else null: progress shows tokens/s. */
  get tokensPerExample(): number | null {
    return this.engine.tokensPerExample;
  }

  /** Copies of the current params (or m, v), by name. */
  snapshot(state: StateName = 'params'): Record<string, Float32Array> {
    const views = this.optimizer.stateViews(state);
    return Object.fromEntries(this.tensors.map((t) => [t.name, views[t.name].slice()]));
  }

  /** Write a safetensors checkpoint of params and Adam moments at globalStep (atomic). */
  async saveCheckpoint(path: string): Promise<void> {
    const o = this.optimizer;
    await writeCheckpoint(path, {
      tensors: this.tensors,
      states: Object.fromEntries(o.stateNames.map((s) => [s, o.stateViews(s)])),
      metadata: {
        step: o.globalStep,
        lr: o.lr,
        convention: o.convention,
        config: this.config,
        data: {
          seed: this.config.seed,
          globalBatch: this.config.batchSize,
          replicas: this.replicas,
          batch: this.batchIndex,
          skippedSteps: this.#skips.skipped,
          consecutiveSkips: this.#skips.consecutive,
          ...this.dataPosition,
        },
      },
    });
  }

  /**
   * The engine's state on every thread (one 'info' task per thread, all in flight at once so that each idle
   * thread takes one), ordered by thread id.
   */
  async replicaInfo(): Promise<ThreadInfo[]> {
    await this.engine.release?.();
    const infos = await settleAll(Array.from({ length: this.threads }, () => this.#run<ThreadInfo>(this.engine.infoTask(), 'replica info')));
    return infos.sort((a, b) => a.threadId - b.threadId);
  }

  async close(): Promise<void> {
    await this.engine.release?.();
    await this.optimizer.close();
    await this.engine.close();
  }
}

/** The run's threads (the option, the config, else every core) and replicas (default: one per thread), checked against the batch. */
export function runThreads(config: TrainConfig, threadsOption: number | undefined, where: string): { threads: number; replicas: number } {
  const threads = threadsOption ?? config.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new ConfigError(`threads must be a positive integer, got ${threads}`);
  const replicas = config.replicas ?? threads;
  const perStep = replicas * config.accumulateSteps;
  if (config.batchSize % perStep !== 0) {
    throw new ConfigError(`${where}: batchSize ${config.batchSize} is not divisible by replicas × accumulateSteps = ${replicas} × ${config.accumulateSteps}`);
  }
  return { threads, replicas };
}

/** Open an init source and map it onto the model's tensors: every name and shape checked, no value read yet. */
function openInit(source: InitSource, tensors: readonly TensorSpec[]): Gpt2Checkpoint {
  switch (source.format) {
    case 'gpt2':
      return Gpt2Checkpoint.open(source.path, tensors);
  }
}

/** The skip counters of a checkpoint's `data` metadata (absent in older checkpoints: none skipped). */
function skipCounters(data: unknown, path: string): SkipCounters {
  const d = (data !== null && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  const count = (key: string): number => {
    const x = d[key] ?? 0;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new Error(`checkpoint ${path}: __metadata__.data.${key} must be a non-negative integer, got ${JSON.stringify(x)}`);
    return x;
  };
  return { skipped: count('skippedSteps'), consecutive: count('consecutiveSkips') };
}
