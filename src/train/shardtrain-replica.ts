// The pool threads' side of shardtrain's engine, loaded as a worker extension of the optimizer's pool. Any
// thread can play any member of any replica: what it needs of replica r (a runner: kernels over r's arena,
// r's programs) is built the first time it plays a part in r. Per task it gets a few numbers:
//   grad    { batch, replica, member, task }  its share of replica r's step: the params copied in, then per
//           micro-batch the train pass (gathered, forward, backward, gradients handed off to slot r)
//   eval    { replica, member, from, to }     its share of r's forward passes over held-out [from, to)
//   sample  { replica, member, count, … }     its share of the sampler's passes: every member runs the
//           model's sampling loop in lockstep on the same logits, so all draw the same tokens
//   probe   { replica, member, examples }     which examples alone give a non-finite loss or gradient
//   info    {}                                this thread's heap
// The members of a team meet at the barrier of parallel/team.ts after every phase. Member 0 answers for the
// team (the loss, the EvalPart, the samples); the others answer null.

import { getHeapStatistics } from 'node:v8';
import { threadId } from 'node:worker_threads';
import { stampSlot } from '../parallel/checked-writes.js';
import { serveResident, type ResidentBuffers } from '../parallel/resident.js';
import { Team } from '../parallel/team.js';
import type { ExtensionEnv } from '../parallel/worker-protocol.js';
import { matmulScratchBytes } from '../kernels/matmul.js';
import type { SimdFlavor } from '../kernels/wasm-modules.js';
import type { ExampleSet } from '../models/model-module.js';
import { engineModel, type EngineBuiltin } from '../models/builtin-engines.js';
import type { EngineModel, PassKind, PassShape } from '../models/engine-model.js';
import { DataOrder } from './data-order.js';
import type { EvalPart, ThreadInfo } from './engine.js';
import { planArena } from './memory-plan.js';
import { ReplicaRunner, type EngineFault } from './shardtrain-runner.js';
import { markTaskStarted } from './step-guard.js';

export interface EngineReplicaInit {
  readonly module: EngineBuiltin;
  readonly options: Readonly<Record<string, unknown>>;
  /** loadData()'s meta: the vocabulary the model is built over. */
  readonly meta: unknown;
  readonly seed: number;
  /** The data set, in shared memory (passed by handle: one copy for every thread). */
  readonly train: ExampleSet;
  readonly eval: ExampleSet;
  readonly trainCount: number;
  readonly arenas: readonly WebAssembly.Memory[];
  /** The passes' shapes, from which each thread lays out the arenas as the coordinator did (memory-plan.ts). */
  readonly shapes: Readonly<Record<PassKind, PassShape>>;
  /** Team size of each replica. */
  readonly members: readonly number[];
  readonly teams: SharedArrayBuffer;
  readonly globalBatch: number;
  readonly replicas: number;
  readonly accumulateSteps: number;
  readonly flavor: SimdFlavor;
  /** StepGuard's table: each grad task writes its thread id at its task index. */
  readonly threadTable: SharedArrayBuffer;
  /** @internal test hook (shardtrain-runner.ts EngineFault). */
  readonly fault?: EngineFault;
}

export interface SampleTaskOptions {
  readonly count: number;
  readonly seed: number;
  readonly prompt?: string;
  readonly tokens?: number;
  readonly temperature?: number;
  readonly topK?: number;
}

export type EngineTaskPayload =
  | { readonly op: 'grad'; readonly batch: number; readonly replica: number; readonly member: number; readonly task: number }
  | { readonly op: 'eval'; readonly replica: number; readonly member: number; readonly from: number; readonly to: number }
  | ({ readonly op: 'sample'; readonly replica: number; readonly member: number } & SampleTaskOptions)
  | { readonly op: 'probe'; readonly replica: number; readonly member: number; readonly examples: readonly number[] }
  | { readonly op: 'serve'; readonly slot: number; readonly residents: ResidentBuffers }
  | { readonly op: 'info' };

/** The resident command of a step's gradient task (args: batch, replica, member, task, step). */
export const kResidentGrad = 1;

class EngineThread {
  readonly #init: EngineReplicaInit;
  readonly #env: ExtensionEnv;
  readonly #model: EngineModel;
  readonly #order: DataOrder;
  readonly #runners = new Map<number, ReplicaRunner>();
  readonly #teams = new Map<string, Team>();
  readonly #micro: number;

  constructor(init: EngineReplicaInit, env: ExtensionEnv) {
    if (env.step === null) throw new Error('the engine extension needs a pool created by the optimizer');
    this.#init = init;
    this.#env = env;
    this.#model = engineModel(init.module, init.options, init.meta);
    this.#order = new DataOrder(init.trainCount, init.globalBatch, init.seed);
    this.#micro = init.globalBatch / (init.replicas * init.accumulateSteps);
  }

  /** Team size of replica r. */
  members(r: number): number {
    return this.#init.members[r];
  }

  /** Passes run on this thread, over every replica it played a part in. */
  get passes(): number {
    let n = 0;
    for (const runner of this.#runners.values()) n += runner.passes;
    return n;
  }

  #runner(r: number): ReplicaRunner {
    let runner = this.#runners.get(r);
    if (runner === undefined) {
      const init = this.#init;
      const plan = planArena(this.#model, init.shapes, init.members[r], matmulScratchBytes(init.flavor));
      runner = new ReplicaRunner(this.#model, plan, init.arenas[r], init.flavor, { writer: this.#env.step!, slot: r }, init.fault ?? null);
      this.#runners.set(r, runner);
    }
    return runner;
  }

  #team(r: number, member: number): Team {
    const key = `${r}/${member}`;
    let team = this.#teams.get(key);
    if (team === undefined) {
      team = new Team(this.#init.teams, r, member, this.#init.members[r]);
      this.#teams.set(key, team);
    }
    return team;
  }

  /** Replica r's step on global batch `batch`: the mean loss (member 0), after the slot is written and stamped. */
  grad(batch: number, r: number, member: number, task: number): number | null {
    markTaskStarted(this.#init.threadTable, task);
    const runner = this.#runner(r);
    const team = this.#team(r, member);
    const shape = runner.plan.shapes.train;
    const k = this.#init.accumulateSteps;
    runner.copyIn(team);
    runner.armFault(this.#init.fault?.batch === batch);
    let loss = 0;
    for (let j = 0; j < k; j++) {
      const indices = this.#order.slice(batch, (r * k + j) * this.#micro, this.#micro);
      runner.run(shape, team, { set: this.#init.train, indices }, { mode: j === 0 ? 'copy' : 'add', check: j === k - 1 });
      if (member === 0) loss += runner.lossSum(shape);
    }
    if (member !== 0) return null;
    // After the last pass's final barrier every member's hand-off is written and its checks are in the flag.
    stampSlot(this.#env.step!.control, r, !team.failed());
    return loss / (k * this.#micro * this.#model.lossRows(shape.tokens));
  }

  /** Held-out examples [from, to) through r's forward passes: Σ of each example's mean loss (member 0). */
  evaluate(r: number, member: number, from: number, to: number): EvalPart {
    const runner = this.#runner(r);
    const team = this.#team(r, member);
    const planned = runner.plan.shapes.eval;
    runner.copyIn(team);
    let lossSum = 0;
    for (let a = from; a < to; a += planned.batch) {
      const n = Math.min(planned.batch, to - a);
      const shape: PassShape = { ...planned, batch: n };
      runner.run(shape, team, { set: this.#init.eval, indices: Uint32Array.from({ length: n }, (_, i) => a + i) });
      if (member === 0) lossSum += runner.lossSum(shape) / this.#model.lossRows(shape.tokens);
    }
    return member === 0 ? { lossSum, count: to - from } : { lossSum: 0, count: 0 };
  }

  /** The model's sampler on r's team (every member runs it: the same logits give every member the same draws). */
  sample(r: number, member: number, o: SampleTaskOptions): string[] | null {
    const model = this.#model;
    if (!model.sample) return [];
    const runner = this.#runner(r);
    const team = this.#team(r, member);
    runner.copyIn(team);
    const inputsAt = runner.slotAt('sample', 'inputs') / 4;
    const logitsAt = runner.slotAt('sample', 'logits') / 4;
    const V = model.vocab;
    const samples = model.sample({
      ...o,
      maxBatch: runner.plan.shapes.sample.batch,
      lastLogits: (inputs, batch, tokens) => {
        team.barrier(); // every member has read the previous logits before the inputs change
        if (member === 0) runner.i32.set(inputs, inputsAt);
        team.barrier();
        runner.run({ kind: 'sample', batch, tokens, lossScale: 1 }, team, null);
        return runner.f32.slice(logitsAt, logitsAt + batch * V);
      },
    });
    return member === 0 ? samples : null;
  }

  /** Which of `examples` give, alone, a non-finite loss or gradient at the current params (member 0). */
  probe(r: number, member: number, examples: readonly number[]): number[] | null {
    const runner = this.#runner(r);
    const team = this.#team(r, member);
    const planned = runner.plan.shapes.train;
    const shape: PassShape = { ...planned, batch: 1, lossScale: 1 / this.#model.lossRows(planned.tokens) };
    runner.copyIn(team);
    const culprits: number[] = [];
    for (const e of examples) {
      team.barrier();
      if (member === 0) team.clearFailed();
      team.barrier();
      runner.run(shape, team, { set: this.#init.train, indices: [e] }, { mode: 'scan', check: false });
      if (team.failed() || !Number.isFinite(runner.lossSum(shape))) culprits.push(e);
    }
    return member === 0 ? culprits : null;
  }
}

function info(passes: number): ThreadInfo {
  return { threadId, backend: 'shardtrain', numTensors: 0, numBytes: 0, heapUsedBytes: getHeapStatistics().used_heap_size, wasmHeapBytes: 0, passes };
}

/** The worker-extension entry point: called once per pool thread. */
export function createHandler(data: unknown, env: ExtensionEnv): (payload: unknown) => unknown {
  const thread = new EngineThread(data as EngineReplicaInit, env);
  return (payload: unknown) => {
    const task = payload as EngineTaskPayload;
    switch (task.op) {
      case 'grad':
        return thread.grad(task.batch, task.replica, task.member, task.task);
      case 'eval':
        return thread.evaluate(task.replica, task.member, task.from, task.to);
      case 'sample':
        return thread.sample(task.replica, task.member, task);
      case 'probe':
        return thread.probe(task.replica, task.member, task.examples);
      case 'serve':
        // Step after step without a piscina round trip (parallel/resident.ts), until the coordinator stops it.
        serveResident(task.residents, task.slot, (op, a) => {
          if (op !== kResidentGrad) throw new Error(`resident command ${op} is not known`);
          try {
            return thread.grad(a[0], a[1], a[2], a[3]) ?? Number.NaN;
          } catch (err) {
            const g = thread.members(a[1]);
            throw Object.assign(err instanceof Error ? err : new Error(String(err)), { taskLabel: `${g === 1 ? `replica ${a[1]}` : `replica ${a[1]}, thread ${a[2] + 1} of ${g}`}, step ${a[4]}` });
          }
        });
        return null;
      case 'info':
        return info(thread.passes);
    }
  };
}
