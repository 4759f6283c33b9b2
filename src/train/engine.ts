// What computes the gradients: the trainer's side of an engine. The trainer owns the step, the data order's
// position, the optimizer and the checks; an engine owns the model's arithmetic and the worker threads'
// part of a step. Two engines:
//   shardtrain  the built-in models (char-lm, gpt) on our own layers (src/nn/), each replica one arena of
//               shared memory, its ops split over a team of pool threads (shardtrain-engine.ts)
//   tfjs        any model module (a tfjs LayersModel), one TensorFlow.js replica per pool thread (tfjs-engine.ts)

import type { TensorSpec } from '../memory/layout.js';
import type { TensorView } from '../memory/tensor-views.js';
import type { ExtensionInit } from '../parallel/worker-protocol.js';
import type { InitSource, SampleContext } from '../models/model-module.js';

export const engineKinds = Object.freeze(['shardtrain', 'tfjs'] as const);
export type EngineKind = (typeof engineKinds)[number];

/** One pool task of an engine: what to send, and how errors name it. */
export interface EngineTask {
  /** The replica whose work it is. */
  readonly replica: number;
  /** Who it is in messages: `replica 1`, or `replica 0, thread 2 of 2` for a member of a replica's team. */
  readonly who: string;
  /** How a worker's error names it: `replica 1, step 7`, `evaluation part 0/2`. */
  readonly label: string;
  readonly payload: unknown;
}

/** The sum of per-example losses over a part of the held-out examples. */
export interface EvalPart {
  readonly lossSum: number;
  readonly count: number;
}

/** What an engine's 'info' task reports of its thread (a leak shows as growth between two calls). */
export interface ThreadInfo {
  readonly threadId: number;
  /** `wasm` / `cpu` (tfjs's backend), `shardtrain` (our engine). */
  readonly backend: string;
  /** Live tfjs tensors and their bytes (0 on the shardtrain engine, which makes none). */
  readonly numTensors: number;
  readonly numBytes: number;
  /** The thread's V8 heap in use, and the wasm memory it holds alone (tfjs's heap; 0 when all is shared). */
  readonly heapUsedBytes: number;
  readonly wasmHeapBytes: number;
  /** Passes of the shardtrain engine this thread took part in (absent on tfjs). */
  readonly passes?: number;
}

export type SampleOptions = Pick<SampleContext, 'prompt' | 'tokens' | 'temperature' | 'topK'>;

export interface Engine {
  readonly kind: EngineKind;
  /** How the start line says it: `engine shardtrain`, `engine tfjs (backend wasm)`. */
  readonly description: string;
  readonly tensors: readonly TensorSpec[];
  readonly counts: { readonly train: number; readonly eval: number };
  /** Tokens per training example for sequence models (progress shows tokens/s), else null. */
  readonly tokensPerExample: number | null;
  /**
   * Where the initial values come from instead of initialValues() (the model module's initSource): the
   * trainer reads it into the parameters before the first step, unless it resumes. null: initialValues().
   */
  readonly initSource: InitSource | null;
  /** The worker extension every pool thread loads to run this engine's tasks. */
  readonly extension: ExtensionInit;
  /** The run's memory plan in one line, when the engine plans its memory (the run prints it). */
  readonly planLine?: string;
  /**
   * The pool is up: how the engine runs tasks of its own (samples, probes) on it, and whether the pool's threads
   * are the engine's between steps (the optimizer steps on the calling thread) so that it may keep them.
   */
  attach?(run: (task: EngineTask) => Promise<unknown>, options: { readonly keepThreads: boolean }): void;
  /**
   * How to run this step's gradient tasks when the engine dispatches them itself (resident tasks, without a
   * pool round trip per step), or null: the trainer posts them to the pool.
   */
  gradRunner?(tasks: readonly EngineTask[], step: number): ((task: EngineTask, index: number) => Promise<unknown>) | null;
  /** Give the pool's threads back (before the trainer runs anything else on them). */
  release?(): Promise<void>;
  /** Initial values of every tensor, in tensor order (copied into the shard memories once). */
  initialValues(): readonly Float32Array[];
  /**
   * The gradient tasks of global batch `batch` (the step `step` is for messages): they must all run at once,
   * one per thread (a team's members wait for each other).
   */
  gradTasks(batch: number, step: number): readonly EngineTask[];
  /** The replicas' mean losses, in replica order, from the results of gradTasks' tasks (in their order). */
  replicaLosses(results: readonly unknown[]): number[];
  /** Tasks that together score the held-out examples [0, counts.eval), each resolving to an EvalPart. */
  evalTasks(): readonly EngineTask[];
  /** An 'info' task (the engine's live state on a thread: ReplicaInfo-like), one per thread. */
  infoTask(): unknown;
  /** Which of the training `examples` give a non-finite loss or gradient alone, at `params`. */
  culprits(params: Readonly<Record<string, TensorView>>, examples: readonly number[]): Promise<number[]>;
  /** Text from the model at `params` ([] when the model cannot sample). */
  sample(params: Readonly<Record<string, TensorView>>, count: number, seed: number, options: SampleOptions): Promise<string[]>;
  /**
   * Called at the first failed task of a step, while the others may still run: an engine whose tasks wait
   * for each other releases them here, so that the step fails instead of hanging.
   */
  abandon?(): void;
  /** Give back what the engine holds on this thread. */
  close(): Promise<void>;
}
