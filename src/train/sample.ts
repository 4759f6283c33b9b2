// `shardtrain sample`: text from a trained model. The run's config comes from the checkpoint's metadata, the
// model is built on this thread (createModel, then the checkpoint's params), and the model module's
// sample() writes the text; loadData gives it its meta (the vocabulary), as during training.

import { stateNamesFor } from '../memory/shard-states.js';
import { tf } from '../tfjs/tf.js';
import { fileTensorName } from '../checkpoint/checkpoint.js';
import { resolveCheckpoint } from '../checkpoint/checkpoint-store.js';
import { startModel, type SampleContext } from '../models/model-module.js';
import type * as TF from '@tensorflow/tfjs-core';
import { checkpointConfig } from './config.js';

export interface SampleOptions extends Partial<Pick<SampleContext, 'prompt' | 'tokens' | 'temperature'>> {
  /** A run directory (its newest checkpoint that verifies) or a checkpoint file. */
  readonly source: string;
  /** Samples to draw. Default 1. */
  readonly count?: number;
  /** Seeds the draws. Default: the run's seed. */
  readonly seed?: number;
  /** Where a skipped damaged checkpoint is reported. Default stderr. */
  readonly warn?: (line: string) => void;
}

export interface SampleResult {
  readonly checkpoint: string;
  readonly step: number;
  readonly samples: string[];
}

export async function sampleFromCheckpoint(o: SampleOptions): Promise<SampleResult> {
  const warn = o.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const checkpoint = resolveCheckpoint(o.source, warn, '');
  const config = checkpointConfig(checkpoint);
  const { module: mod, model, tensors, data } = await startModel({ ...config.model, seed: config.seed, backend: config.backend });
  if (!mod.sample) throw new Error(`model module ${config.model.module} has no sample() export: it cannot write samples`);
  // The whole file must match this model (Adam's moments too), as for a resume; only the params are read.
  checkpoint.check(tensors, stateNamesFor(config.optimizer.amsgrad === true));
  tensors.forEach((t, i) => {
    const values = checkpoint.readTensor(fileTensorName('params', t.name));
    tf.tidy(() => (model.trainableWeights[i].read() as TF.Variable).assign(tf.tensor(values, t.shape as number[], 'float32')));
  });
  const count = o.count ?? 1;
  const samples = mod.sample({ tf, model, count, seed: o.seed ?? config.seed, meta: data.meta, prompt: o.prompt, tokens: o.tokens, temperature: o.temperature });
  return { checkpoint: checkpoint.path, step: checkpoint.step, samples };
}
