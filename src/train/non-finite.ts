// What made a step non-finite, found on the coordinator's thread only after a step went wrong: which
// replicas (a NaN/Inf loss, or a NaN/Inf in their gradient slot), which training examples their micro-batches
// held, and which of those give a non-finite loss or gradient on their own (one forward + backward each).

import type { DataSet, LayersModel, ModelModule } from '../models/model-module.js';
import { batchTensors } from './tfjs-replica.js';
import type * as TF from '@tensorflow/tfjs-core';
import { tf } from '../tfjs/tf.js';

export interface NonFiniteReplica {
  readonly replica: number;
  /** The replica's mean micro-batch loss (maybe finite: a gradient can be NaN under a finite loss). */
  readonly loss: number;
  /** Tensor holding the first non-finite element of the replica's gradient slot; null when it is finite. */
  readonly tensor: string | null;
  /** Training-set indices of the replica's examples in this batch, in batch order. */
  readonly examples: readonly number[];
  /** Those that give a non-finite loss or gradient alone. */
  readonly culprits: readonly number[];
}

export interface NonFiniteReport {
  /** The step that was attempted (1-based, as in the logs). */
  readonly step: number;
  /** Index of the global batch in the data order. */
  readonly batch: number;
  readonly replicas: readonly NonFiniteReplica[];
}

/** What the probe needs from the trainer: the coordinator's model copy, with the step's params loaded. */
export interface ProbeContext {
  readonly module: ModelModule;
  readonly model: LayersModel;
  readonly data: DataSet;
}

/** Does training example `index` alone give a finite loss and gradient? */
export function exampleIsFinite(ctx: ProbeContext, index: number): boolean {
  return tf.tidy(() => {
    const { x, y } = batchTensors(ctx.data.train, [index]);
    const variables = ctx.model.trainableWeights.map((w) => w.read() as TF.Variable);
    const { value, grads } = tf.variableGrads(() => ctx.module.loss({ tf, model: ctx.model, x, y }), variables);
    return Number.isFinite(value.dataSync()[0]) && Object.values(grads).every((g) => Array.prototype.every.call(g.dataSync(), Number.isFinite));
  });
}

function list(xs: readonly number[], max = 8): string {
  return xs.length <= max ? xs.join(', ') : `${xs.slice(0, max).join(', ')}, … (${xs.length} in all)`;
}

function describeReplica(r: NonFiniteReplica): string {
  const what = [`loss ${r.loss}`, r.tensor === null ? 'gradient finite' : `non-finite gradient in "${r.tensor}"`].join(', ');
  const alone = r.culprits.length > 0 ? `training example${r.culprits.length > 1 ? 's' : ''} ${list(r.culprits)} alone give${r.culprits.length > 1 ? '' : 's'} non-finite values` : 'no single example does it alone';
  return `replica ${r.replica} (${what}; ${alone}; its examples: ${list(r.examples)})`;
}

/** One line: step, batch, and per bad replica its loss, the bad tensor and the examples. */
export function describeNonFinite(report: NonFiniteReport): string {
  return `step ${report.step} (batch ${report.batch}): ${report.replicas.map(describeReplica).join('; ')}`;
}
