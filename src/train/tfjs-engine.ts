// The tfjs engine: any model module (a TensorFlow.js LayersModel), one private tfjs replica per pool thread
// (tfjs-replica.ts, loaded as a worker extension), and a copy of the model on this thread for samples and
// for finding the examples behind a non-finite step. What users' own models train on; the built-in models
// run on it too with `"engine": "tfjs"`.

import type { TensorSpec } from '../memory/layout.js';
import { tensorParts, type TensorView } from '../memory/tensor-views.js';
import type * as TF from '@tensorflow/tfjs-core';
import { tf } from '../tfjs/tf.js';
import { startModel, tokensPerExample, type InitSource, type StartedModel } from '../models/model-module.js';
import type { TrainConfig } from './config.js';
import type { Engine, EngineTask, SampleOptions } from './engine.js';
import { exampleIsFinite } from './non-finite.js';
import type { ReplicaInit, ReplicaTask } from './tfjs-replica.js';
import { replicaLabel } from './step-guard.js';
import { sharedDataSet } from './shared-data.js';

const replicaModule = new URL('./tfjs-replica.js', import.meta.url).href;

export class TfjsEngine implements Engine {
  readonly kind = 'tfjs' as const;
  readonly description: string;
  readonly tensors: readonly TensorSpec[];
  readonly counts: { readonly train: number; readonly eval: number };
  readonly tokensPerExample: number | null;
  readonly initSource: InitSource | null;
  readonly extension: { readonly module: string; readonly data: ReplicaInit };
  readonly #started: StartedModel;
  readonly #replicas: number;
  readonly #threads: number;

  private constructor(started: StartedModel, init: ReplicaInit, replicas: number, threads: number) {
    this.#started = started;
    this.#replicas = replicas;
    this.#threads = threads;
    this.description = `engine tfjs (backend ${started.backend})`;
    this.tensors = started.tensors;
    this.counts = started.counts;
    this.tokensPerExample = tokensPerExample(started.data.train);
    this.initSource = started.module.initSource?.({ options: init.modelOptions }) ?? null;
    this.extension = { module: replicaModule, data: init };
  }

  /**
   * Load tfjs and the model module here, build the model and its data, and say what the replicas get: the
   * data too, in shared memory, so that no replica loads (and holds) a copy of its own.
   */
  static async create(config: TrainConfig, replicas: number, threads: number, threadTable: SharedArrayBuffer): Promise<TfjsEngine> {
    const loaded = await startModel({ module: config.model.module, options: config.model.options, seed: config.seed, backend: config.backend });
    const started: StartedModel = { ...loaded, data: sharedDataSet(loaded.data) };
    const init: ReplicaInit = {
      data: started.data,
      moduleUrl: started.url,
      modelOptions: config.model.options,
      seed: config.seed,
      backend: started.backend,
      tensors: started.tensors,
      globalBatch: config.batchSize,
      replicas,
      accumulateSteps: config.accumulateSteps,
      evalBatch: config.evalBatch,
      threadTable,
    };
    return new TfjsEngine(started, init, replicas, threads);
  }

  initialValues(): readonly Float32Array[] {
    return this.#started.model.trainableWeights.map((w) => w.read().dataSync() as Float32Array);
  }

  gradTasks(batch: number, step: number): readonly EngineTask[] {
    return Array.from({ length: this.#replicas }, (_, replica) => ({
      replica,
      who: `replica ${replica}`,
      label: replicaLabel(replica, step),
      payload: { op: 'grad', batch, replica } satisfies ReplicaTask,
    }));
  }

  replicaLosses(results: readonly unknown[]): number[] {
    return results as number[];
  }

  evalTasks(): readonly EngineTask[] {
    const n = this.counts.eval;
    const parts = this.#threads;
    return Array.from({ length: parts }, (_, k) => ({
      replica: -1,
      who: `evaluation part ${k}/${parts}`,
      label: `evaluation part ${k}/${parts}`,
      payload: { op: 'eval', from: Math.floor((n * k) / parts), to: Math.floor((n * (k + 1)) / parts) } satisfies ReplicaTask,
    }));
  }

  infoTask(): unknown {
    return { op: 'info' } satisfies ReplicaTask;
  }

  async culprits(params: Readonly<Record<string, TensorView>>, examples: readonly number[]): Promise<number[]> {
    this.#load(params);
    const ctx = { module: this.#started.module, model: this.#started.model, data: this.#started.data };
    return examples.filter((i) => !exampleIsFinite(ctx, i));
  }

  async sample(params: Readonly<Record<string, TensorView>>, count: number, seed: number, options: SampleOptions): Promise<string[]> {
    const { module: mod, model, data } = this.#started;
    if (!mod.sample || count === 0) return [];
    this.#load(params);
    return mod.sample({ tf, model, count, seed, meta: data.meta, ...options });
  }

  async close(): Promise<void> {
    // The model copy on this thread lives as long as the process's tfjs; nothing else is held.
  }

  /** Copy `params` into this thread's model. */
  #load(params: Readonly<Record<string, TensorView>>): void {
    this.tensors.forEach((t, i) => {
      const values = new Float32Array(t.size);
      let at = 0;
      for (const part of tensorParts(params[t.name])) {
        values.set(part, at);
        at += part.length;
      }
      tf.tidy(() => (this.#started.model.trainableWeights[i].read() as TF.Variable).assign(tf.tensor(values, t.shape as number[], 'float32')));
    });
  }
}
