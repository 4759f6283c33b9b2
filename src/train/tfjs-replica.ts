// One replica per pool thread, loaded as a worker extension of the optimizer's pool (so it shares the
// threads and sees the same shared memories). It keeps a private tfjs copy of the model; per task it gets
// two small numbers (batch, replica) and:
//   1. loads the current params from shared memory into its tfjs variables,
//   2. computes loss and gradients on its fixed micro-batch(es) of the global batch (data-order.ts),
//   3. writes the (accumulation-averaged) gradients into gradient slot `replica`.
// Slot r is written by exactly one task per step, so no two threads write the same bytes; the optimizer's
// update phase then reads every slot. piscina's task hand-off (a message) orders these writes before the
// coordinator's step(), which starts only after every replica task has resolved.

import { getHeapStatistics } from 'node:v8';
import { threadId } from 'node:worker_threads';
import { stampSlot, writeChecked, type SlotWriter } from '../parallel/checked-writes.js';
import type { ExtensionEnv } from '../parallel/worker-protocol.js';
import type { ThreadInfo } from './engine.js';
import { tensorParts, tensorViews, type TensorView } from '../memory/tensor-views.js';
import { DataOrder, gatherBatch } from './data-order.js';
import type { TensorSpec } from '../memory/layout.js';
import { startModel, type DataSet, type ExampleSet, type LayersModel, type ModelModule, type StartedModel } from '../models/model-module.js';
import { markTaskStarted } from './step-guard.js';
import type * as TF from '@tensorflow/tfjs-core';
import { tf, type BackendName } from '../tfjs/tf.js';

export interface ReplicaInit {
  readonly moduleUrl: string;
  readonly modelOptions: Readonly<Record<string, unknown>>;
  readonly seed: number;
  /** The coordinator's data set, in shared memory (the replica does not load its own). */
  readonly data: DataSet;
  readonly backend: BackendName;
  /** What the coordinator's copy of the model has: every replica must build the same. */
  readonly tensors: readonly TensorSpec[];
  readonly globalBatch: number;
  readonly replicas: number;
  readonly accumulateSteps: number;
  readonly evalBatch: number;
  /** StepGuard's table: each grad task writes its thread id at its index (the replica). */
  readonly threadTable: SharedArrayBuffer;
}

export type ReplicaTask =
  /** `batch` picks the data (optimizer step + skipped steps: a skipped step moves on to the next batch). */
  | { readonly op: 'grad'; readonly batch: number; readonly replica: number }
  | { readonly op: 'eval'; readonly from: number; readonly to: number }
  | { readonly op: 'info' };

/** What an 'info' task reports: the thread's tfjs backend and live tensors; wasmHeapBytes is the backend's heap (it grows, never shrinks; 0 on cpu). */
export interface ReplicaInfo extends ThreadInfo {
  readonly backend: BackendName;
}

/** The memory this thread holds: its JS heap and, on the wasm backend, the backend's linear memory. */
function threadMemory(): { heapUsedBytes: number; wasmHeapBytes: number } {
  const backend = tf.backend() as { wasm?: { HEAPU8?: Uint8Array } };
  return { heapUsedBytes: getHeapStatistics().used_heap_size, wasmHeapBytes: backend.wasm?.HEAPU8?.buffer.byteLength ?? 0 };
}

/** tfjs's wasm kernels address their heap with signed 32-bit offsets here and there: past 2 GiB they fail. */
const kTfjsHeapTroubleBytes = 2 ** 31;

/**
 * A wasm trap or abort inside tfjs, said with the heap size and, when the heap is past 2 GiB (where tfjs's
 * own kernels go out of bounds or abort), what to do about it; other errors pass unchanged.
 */
export function withHeapHint(err: unknown, heapBytes: number): unknown {
  const wasmFailure = err instanceof WebAssembly.RuntimeError || (err instanceof Error && /^Aborted\(/.test(err.message));
  if (!wasmFailure || heapBytes === 0) return err;
  const gib = (heapBytes / 2 ** 30).toFixed(2);
  const hint =
    heapBytes > kTfjsHeapTroubleBytes
      ? `; the replica's tfjs wasm heap is ${gib} GiB, past the 2 GiB where tfjs's own kernels fail: a smaller micro-batch (accumulateSteps) keeps it down`
      : ` (the replica's tfjs wasm heap is ${gib} GiB)`;
  return new Error(`${(err as Error).message.split('\n')[0]}${hint}`, { cause: err });
}

export interface EvalPart {
  readonly lossSum: number;
  readonly count: number;
}

/** Examples `indices` of `e` as a batch of tensors (x, y). */
export function batchTensors(e: ExampleSet, indices: ArrayLike<number>): { x: TF.Tensor; y: TF.Tensor } {
  const b = gatherBatch(e, indices);
  return {
    x: tf.tensor(b.x, b.xShape as number[], b.x instanceof Int32Array ? 'int32' : 'float32'),
    y: tf.tensor(b.y, b.yShape as number[], b.y instanceof Int32Array ? 'int32' : 'float32'),
  };
}

/** Copy a live view into a private Float32Array (tfjs must never alias shared memory). */
function copyOut(view: TensorView, out: Float32Array): Float32Array {
  let at = 0;
  for (const part of tensorParts(view)) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export class Replica {
  readonly #init: ReplicaInit;
  readonly #module: ModelModule;
  readonly #model: LayersModel;
  readonly #variables: TF.Variable[];
  readonly #data: DataSet;
  readonly #order: DataOrder;
  readonly #params: Readonly<Record<string, TensorView>>;
  readonly #writer: SlotWriter;
  readonly #scratch: Float32Array[];
  readonly #acc: Float32Array[];
  readonly #micro: number;
  readonly backend: BackendName;

  constructor(init: ReplicaInit, started: StartedModel, env: ExtensionEnv) {
    if (env.step === null) throw new Error('the replica extension needs a pool created by the optimizer');
    const { module: mod, model, data, backend, tensors: specs, counts } = started;
    this.#init = init;
    this.#module = mod;
    this.#model = model;
    this.backend = backend;
    const got = specs.map((s) => `${s.name}[${s.shape}]`).join(', ');
    const want = init.tensors.map((s) => `${s.name}[${s.shape}]`).join(', ');
    if (got !== want) throw new Error(`model module ${init.moduleUrl} built different tensors in a worker (${got}) than on the main thread (${want}): name your layers and make createModel deterministic`);
    this.#variables = model.trainableWeights.map((w) => w.read() as TF.Variable);
    this.#data = data;
    this.#order = new DataOrder(counts.train, init.globalBatch, init.seed);
    const { layout, shards } = env.step;
    this.#params = tensorViews(layout, shards, 'params');
    this.#writer = env.step;
    this.#scratch = specs.map((s) => new Float32Array(s.size));
    this.#acc = init.accumulateSteps > 1 ? specs.map((s) => new Float32Array(s.size)) : [];
    this.#micro = init.globalBatch / (init.replicas * init.accumulateSteps);
  }

  /** Shared params → this thread's tfjs variables. */
  loadParams(): void {
    this.#init.tensors.forEach((spec, i) => {
      const values = copyOut(this.#params[spec.name], this.#scratch[i]);
      tf.tidy(() => this.#variables[i].assign(tf.tensor(values, spec.shape as number[], 'float32')));
    });
  }

  /** Loss and gradients of micro-batch `j` of replica `r` in global batch `batch`; gradients copied into `out`. */
  #grad(batch: number, r: number, j: number, out: (i: number, g: Float32Array) => void): number {
    const k = this.#init.accumulateSteps;
    const indices = this.#order.slice(batch, (r * k + j) * this.#micro, this.#micro);
    return tf.tidy(() => {
      const { x, y } = batchTensors(this.#data.train, indices);
      const { value, grads } = tf.variableGrads(() => this.#module.loss({ tf, model: this.#model, x, y }), this.#variables);
      this.#variables.forEach((v, i) => out(i, grads[v.name].dataSync() as Float32Array));
      return value.dataSync()[0];
    });
  }

  /**
   * Global batch `batch`, replica r: write the mean gradient of its k micro-batches into slot r (checked for
   * NaN/Inf as it is copied, so the step need not scan it again); returns the mean loss.
   */
  grad(batch: number, r: number): number {
    markTaskStarted(this.#init.threadTable, r);
    this.loadParams();
    const k = this.#init.accumulateSteps;
    let checked = true;
    const write = (i: number, g: Float32Array) => (checked = writeChecked(this.#writer, r, i, g) && checked);
    if (k === 1) {
      const loss = this.#grad(batch, r, 0, write);
      stampSlot(this.#writer.control, r, checked);
      return loss;
    }
    let loss = 0;
    for (let j = 0; j < k; j++) {
      loss += this.#grad(batch, r, j, (i, g) => {
        const acc = this.#acc[i];
        if (j === 0) acc.set(g);
        else for (let e = 0; e < acc.length; e++) acc[e] += g[e];
      });
    }
    const inv = 1 / k;
    this.#acc.forEach((acc, i) => {
      for (let e = 0; e < acc.length; e++) acc[e] *= inv;
      write(i, acc);
    });
    stampSlot(this.#writer.control, r, checked);
    return loss / k;
  }

  /** Sum of per-example losses over held-out examples [from, to), in chunks of evalBatch. */
  evaluate(from: number, to: number): EvalPart {
    this.loadParams();
    let lossSum = 0;
    for (let a = from; a < to; a += this.#init.evalBatch) {
      const b = Math.min(to, a + this.#init.evalBatch);
      const indices = Uint32Array.from({ length: b - a }, (_, i) => a + i);
      lossSum += tf.tidy(() => {
        const { x, y } = batchTensors(this.#data.eval, indices);
        return this.#module.loss({ tf, model: this.#model, x, y }).dataSync()[0] * (b - a);
      });
    }
    return { lossSum, count: to - from };
  }
}

/** The worker-extension entry point: called once per pool thread. */
export async function createHandler(data: unknown, env: ExtensionEnv): Promise<(payload: unknown) => unknown> {
  const init = data as ReplicaInit;
  const started = await startModel({ module: init.moduleUrl, options: init.modelOptions, seed: init.seed, backend: init.backend, data: init.data });
  const replica = new Replica(init, started, env);
  return (payload: unknown) => {
    const task = payload as ReplicaTask;
    try {
      if (task.op === 'grad') return replica.grad(task.batch, task.replica);
      if (task.op === 'eval') return replica.evaluate(task.from, task.to);
    } catch (err) {
      throw withHeapHint(err, threadMemory().wasmHeapBytes);
    }
    return { backend: replica.backend, threadId, numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes, ...threadMemory() } satisfies ReplicaInfo;
  };
}
