// shardtrain's own engine, the coordinator's side: the built-in models (models/builtin-engines.ts) on the
// layers of src/nn/, no TensorFlow.js anywhere. At start-up it loads the data once into shared memory, plans
// every byte (memory-plan.ts: refused in one line when it cannot fit), allocates one arena per replica and
// splits the pool's threads into the replicas' teams: replica r gets ⌊T/R⌋ threads, one more for the first
// T mod R (teamSizes). A step is one task per thread (shardtrain-replica.ts), the members of a team meeting at barriers;
// samples and probes run on replica 0's team.

import { resolveFlavor, type SimdFlavor } from '../kernels/wasm-modules.js';
import { matmulScratchBytes } from '../kernels/matmul.js';
import type { TensorSpec } from '../memory/layout.js';
import type { TensorView } from '../memory/tensor-views.js';
import { allocateArena } from '../nn/arena.js';
import { allocateResidents, kStop, Residents } from '../parallel/resident.js';
import { abortTeamAt, allocateTeams, resetTeamAt } from '../parallel/team.js';
import { engineModel, isEngineBuiltin, type EngineBuiltin } from '../models/builtin-engines.js';
import type { EngineModel, PassKind, PassShape } from '../models/engine-model.js';
import { builtinModels, checkDataSet, isTokenWindows, loadModelModule, tokensPerExample, type DataSet, type ExampleSet, type InitSource } from '../models/model-module.js';
import { ConfigError, type TrainConfig } from './config.js';
import type { Engine, EngineTask, EvalPart, SampleOptions } from './engine.js';
import { checkMemoryPlan, describeMemoryPlan, memoryPlan, planArena, type ArenaPlan, type MemoryPlan } from './memory-plan.js';
import { kResidentGrad, type EngineReplicaInit, type EngineTaskPayload } from './shardtrain-replica.js';
import type { EngineFault } from './shardtrain-runner.js';
import { isAbandoned } from './step-guard.js';
import { exampleBytes, sharedExamples } from './shared-data.js';

const replicaModule = new URL('./shardtrain-replica.js', import.meta.url).href;

/** Sequences a sample pass takes at once, at most (more are sampled in turns). */
const kSampleBatch = 16;

/**
 * Threads of each replica's team: ⌊T/R⌋, one more for the first T mod R replicas. With more replicas than
 * threads every team is one thread, and the replicas' tasks take turns on the threads (a team of one waits for
 * nobody).
 */
export function teamSizes(threads: number, replicas: number): number[] {
  if (replicas >= threads) return new Array<number>(replicas).fill(1);
  return Array.from({ length: replicas }, (_, r) => Math.floor(threads / replicas) + (r < threads % replicas ? 1 : 0));
}

/** The data in shared memory once (shared-data.ts); this engine's models take int32 token ids or examples. */
function shareExamples(e: ExampleSet): ExampleSet {
  if (!isTokenWindows(e) && (!(e.x instanceof Int32Array) || !(e.y instanceof Int32Array))) throw new TypeError('the shardtrain engine takes int32 examples (token ids)');
  return sharedExamples(e);
}

/** The model, its data and the plan of a run: what create() allocates from, and all that --dry-run prints. */
export interface EngineSetupPlan {
  readonly module: EngineBuiltin;
  readonly model: EngineModel;
  readonly data: DataSet;
  readonly counts: { readonly train: number; readonly eval: number };
  readonly shapes: Readonly<Record<PassKind, PassShape>>;
  readonly members: readonly number[];
  readonly arenas: readonly ArenaPlan[];
  readonly memory: MemoryPlan;
  readonly flavor: SimdFlavor;
  /** Where the initial values come from instead of the model's (the trainer reads it), or null. */
  readonly initSource: InitSource | null;
}

/** Load the data and plan the run (nothing large allocated yet); the plan is checked against the machine. */
export async function planShardtrainRun(config: TrainConfig, replicas: number, threads: number, where: string): Promise<EngineSetupPlan> {
  const module = config.model.module;
  if (!isEngineBuiltin(module)) {
    throw new ConfigError(`${where}: engine "shardtrain" runs the built-in models (${Object.keys(builtinModels).join(', ')}); model module ${module} runs on "engine": "tfjs"`);
  }
  const mod = await loadModelModule(builtinModels[module]);
  const data = await mod.loadData({ options: config.model.options, seed: config.seed });
  const counts = checkDataSet(data, builtinModels[module]);
  const model = engineModel(module, config.model.options, data.meta);
  const initSource = mod.initSource?.({ options: config.model.options }) ?? null;
  const k = config.accumulateSteps;
  const micro = config.batchSize / (replicas * k);
  const T = model.window;
  const shapes: Record<PassKind, PassShape> = {
    train: { kind: 'train', batch: micro, tokens: T, lossScale: 1 / (micro * model.lossRows(T) * k) },
    eval: { kind: 'eval', batch: Math.min(config.evalBatch, counts.eval), tokens: T, lossScale: 1 },
    sample: { kind: 'sample', batch: Math.max(1, Math.min(micro, kSampleBatch)), tokens: T, lossScale: 1 },
  };
  const members = teamSizes(threads, replicas);
  const flavor = resolveFlavor('auto');
  const scratch = matmulScratchBytes(flavor);
  const arenas = members.map((g) => planArena(model, shapes, g, scratch));
  const params = model.tensors.reduce((n, t) => n + t.size, 0);
  const memory = memoryPlan({
    params,
    replicas,
    amsgrad: config.optimizer.amsgrad === true,
    arenas,
    dataBytes: exampleBytes(data.train) + exampleBytes(data.eval),
    threads,
  });
  return { module, model, data, counts, shapes, members, arenas, memory, flavor, initSource };
}

export class ShardtrainEngine implements Engine {
  readonly kind = 'shardtrain' as const;
  readonly description = 'engine shardtrain';
  readonly tensors: readonly TensorSpec[];
  readonly counts: { readonly train: number; readonly eval: number };
  readonly tokensPerExample: number | null;
  readonly initSource: InitSource | null;
  readonly extension: { readonly module: string; readonly data: EngineReplicaInit };
  /** The memory plan in one line (the run prints it). */
  readonly planLine: string;
  readonly #plan: EngineSetupPlan;
  readonly #teams: SharedArrayBuffer;
  readonly #replicas: number;
  readonly #threads: number;
  #run: ((task: EngineTask) => Promise<unknown>) | null = null;
  /** Resident gradient tasks (parallel/resident.ts): one per thread of the step, kept between steps. */
  readonly #residents: Residents;
  #keepThreads = false;
  /** The serve task of each slot while it runs (it settles when the resident stops or fails). */
  #serving: (Promise<unknown> | null)[];

  private constructor(plan: EngineSetupPlan, init: EngineReplicaInit, replicas: number, threads: number) {
    this.#plan = plan;
    this.#threads = threads;
    this.#teams = init.teams;
    this.#replicas = replicas;
    this.tensors = plan.model.tensors;
    this.counts = plan.counts;
    this.tokensPerExample = tokensPerExample(plan.data.train);
    this.initSource = plan.initSource;
    this.extension = { module: replicaModule, data: init };
    this.planLine = describeMemoryPlan(plan.memory);
    const slots = plan.members.reduce((n, g) => n + g, 0);
    this.#residents = new Residents(allocateResidents(slots));
    this.#serving = new Array<Promise<unknown> | null>(slots).fill(null);
  }

  static async create(config: TrainConfig, replicas: number, threads: number, threadTable: SharedArrayBuffer, where: string, fault?: EngineFault): Promise<ShardtrainEngine> {
    const plan = await planShardtrainRun(config, replicas, threads, where);
    checkMemoryPlan(plan.memory, where);
    const init: EngineReplicaInit = {
      module: plan.module,
      options: config.model.options,
      meta: plan.data.meta,
      seed: config.seed,
      train: shareExamples(plan.data.train),
      eval: shareExamples(plan.data.eval),
      trainCount: plan.counts.train,
      arenas: plan.arenas.map((a) => allocateArena(a.bytes)),
      shapes: plan.shapes,
      members: plan.members,
      teams: allocateTeams(replicas),
      globalBatch: config.batchSize,
      replicas,
      accumulateSteps: config.accumulateSteps,
      flavor: plan.flavor,
      threadTable,
      ...(fault === undefined ? {} : { fault }),
    };
    return new ShardtrainEngine(plan, init, replicas, threads);
  }

  initialValues(): readonly Float32Array[] {
    return this.#plan.model.initialValues(this.extension.data.seed);
  }

  attach(run: (task: EngineTask) => Promise<unknown>, options: { readonly keepThreads: boolean }): void {
    this.#run = run;
    this.#keepThreads = options.keepThreads;
  }

  gradRunner(tasks: readonly EngineTask[], step: number): ((task: EngineTask, index: number) => Promise<unknown>) | null {
    const run = this.#run;
    // A resident holds its thread for good: one per task, or the tasks that wait their turn never start.
    if (!this.#keepThreads || run === null || tasks.length > this.#threads) return null;
    tasks.forEach((_, i) => {
      if (this.#serving[i] !== null) return;
      const serve = run({ replica: -1, who: `resident ${i}`, label: `resident ${i}`, payload: { op: 'serve', slot: i, residents: this.#residents.buffers } satisfies EngineTaskPayload });
      // A resident ends when told to stop (released) or when its command fails: its slot is then free again.
      this.#serving[i] = serve.finally(() => {
        this.#residents.settle(i);
        this.#serving[i] = null;
      });
      this.#serving[i]!.catch(() => undefined);
    });
    return (task, i) => {
      const p = task.payload as Extract<EngineTaskPayload, { op: 'grad' }>;
      this.#residents.post(i, kResidentGrad, [p.batch, p.replica, p.member, p.task, step]);
      const ended = this.#serving[i]!.then(() => {
        throw new Error(`resident ${i} stopped during ${task.label}`);
      });
      return Promise.race([this.#residents.done(i), ended]).then((x) => (p.member === 0 ? x : null));
    };
  }

  async release(): Promise<void> {
    const running = this.#serving.flatMap((p, i) => (p === null ? [] : [[i, p] as const]));
    for (const [i] of running) this.#residents.post(i, kStop);
    await Promise.allSettled(running.map(([, p]) => p));
  }

  /**
   * One task per member of each of `replicas`' teams (the teams reset: no member is inside one now), labelled
   * `replica 1, step 7` or `replica 0, thread 2 of 2, step 7` (`what` is the part after the comma).
   */
  #teamTasks(replicas: readonly number[], what: string, payload: (r: number, member: number, task: number) => EngineTaskPayload): EngineTask[] {
    const tasks: EngineTask[] = [];
    for (const r of replicas) {
      resetTeamAt(this.#teams, r);
      const g = this.#plan.members[r];
      for (let member = 0; member < g; member++) {
        const who = g === 1 ? `replica ${r}` : `replica ${r}, thread ${member + 1} of ${g}`;
        tasks.push({ replica: r, who, label: `${who}, ${what}`, payload: payload(r, member, tasks.length) });
      }
    }
    return tasks;
  }

  #all(): number[] {
    return Array.from({ length: this.#replicas }, (_, r) => r);
  }

  gradTasks(batch: number, step: number): readonly EngineTask[] {
    return this.#teamTasks(this.#all(), `step ${step}`, (replica, member, task) => ({ op: 'grad', batch, replica, member, task }));
  }

  replicaLosses(results: readonly unknown[]): number[] {
    // Member 0 of each team answers; the others null.
    return results.filter((x) => x !== null) as number[];
  }

  evalTasks(): readonly EngineTask[] {
    const n = this.counts.eval;
    const R = this.#replicas;
    return this.#teamTasks(this.#all(), 'evaluation', (replica, member) => ({
      op: 'eval',
      replica,
      member,
      from: Math.floor((n * replica) / R),
      to: Math.floor((n * (replica + 1)) / R),
    }));
  }

  infoTask(): unknown {
    return { op: 'info' } satisfies EngineTaskPayload;
  }

  /** Run replica 0's team on one job; member 0's answer. */
  async #onReplica0<T>(what: string, payload: (member: number) => EngineTaskPayload): Promise<T> {
    const run = this.#run;
    if (run === null) throw new Error('the engine is not attached to a pool');
    await this.release();
    const tasks = this.#teamTasks([0], what, (_, member) => payload(member));
    // A member that fails outside a phase (between two barriers) leaves the others waiting: release them at once.
    const results = await Promise.allSettled(tasks.map((t) => run(t).catch((err: unknown) => {
      abortTeamAt(this.#teams, 0);
      throw err;
    })));
    const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected' && !isAbandoned(x.reason)) ?? results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) throw failed.reason;
    return (results[0] as PromiseFulfilledResult<T>).value;
  }

  culprits(_params: Readonly<Record<string, TensorView>>, examples: readonly number[]): Promise<number[]> {
    return this.#onReplica0<number[]>('probing examples', (member) => ({ op: 'probe', replica: 0, member, examples }));
  }

  async sample(_params: Readonly<Record<string, TensorView>>, count: number, seed: number, options: SampleOptions): Promise<string[]> {
    if (count === 0 || this.#plan.model.sample === undefined) return [];
    this.#plan.model.checkSample?.({ count, seed, ...options });
    return this.#onReplica0<string[]>('sampling', (member) => ({ op: 'sample', replica: 0, member, count, seed, ...options }));
  }

  abandon(): void {
    for (let r = 0; r < this.#replicas; r++) abortTeamAt(this.#teams, r);
  }

  async close(): Promise<void> {
    // The residents end with the pool (the trainer closes it first); the arenas are shared memories, gone with
    // the last thread that views them.
  }
}

