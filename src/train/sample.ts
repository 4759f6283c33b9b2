// `shardtrain sample`: text from a trained model. The run's config comes from the checkpoint's metadata.
//   built-in models (char-lm, gpt)  on shardtrain's engine, on this thread: the engine model over the data's
//                                   meta (its tokenizer: the model module's loadMeta, which reads no token
//                                   file), one arena, the checkpoint's params copied in, and the model's own
//                                   sampler asking the engine for the last position's logits. The same
//                                   sampler and kernels as a training run's samples; it also runs the GPTs
//                                   tfjs cannot (the bias-free one) and does not load the corpus.
//   model modules                   on tfjs: createModel, the checkpoint's params, the module's sample().

import { stateNamesFor } from '../memory/shard-states.js';
import { tf } from '../tfjs/tf.js';
import { fileTensorName } from '../checkpoint/checkpoint.js';
import { resolveCheckpoint } from '../checkpoint/checkpoint-store.js';
import type { Checkpoint } from '../checkpoint/open.js';
import { matmulScratchBytes } from '../kernels/matmul.js';
import { resolveFlavor } from '../kernels/wasm-modules.js';
import { engineModel, isEngineBuiltin, type EngineBuiltin } from '../models/builtin-engines.js';
import type { PassKind, PassShape } from '../models/engine-model.js';
import { builtinModels, loadModelModule, startModel, type SampleContext } from '../models/model-module.js';
import { allocateArena } from '../nn/arena.js';
import type * as TF from '@tensorflow/tfjs-core';
import { checkpointConfig, type TrainConfig } from './config.js';
import { planArena } from './memory-plan.js';
import { ReplicaRunner } from './shardtrain-runner.js';

export interface SampleOptions extends Partial<Pick<SampleContext, 'prompt' | 'tokens' | 'temperature' | 'topK'>> {
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

type Request = Pick<SampleContext, 'count' | 'seed' | 'prompt' | 'tokens' | 'temperature' | 'topK'>;

/** Sequences one sample pass takes at once (the training engine's sample batch). */
const kSampleBatch = 16;

export async function sampleFromCheckpoint(o: SampleOptions): Promise<SampleResult> {
  const warn = o.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const checkpoint = resolveCheckpoint(o.source, warn, '');
  const config = checkpointConfig(checkpoint);
  const request: Request = { count: o.count ?? 1, seed: o.seed ?? config.seed, prompt: o.prompt, tokens: o.tokens, temperature: o.temperature, topK: o.topK };
  const module = config.model.module;
  const samples = isEngineBuiltin(module) ? await engineSamples(module, config, checkpoint, request) : await tfjsSamples(config, checkpoint, request);
  return { checkpoint: checkpoint.path, step: checkpoint.step, samples };
}

async function engineSamples(module: EngineBuiltin, config: TrainConfig, checkpoint: Checkpoint, request: Request): Promise<string[]> {
  const mod = await loadModelModule(builtinModels[module]);
  const ctx = { options: config.model.options, seed: config.seed };
  const meta = mod.loadMeta ? mod.loadMeta(ctx) : (await mod.loadData(ctx)).meta;
  const model = engineModel(module, config.model.options, meta);
  if (model.sample === undefined) throw new Error(`model ${module} has no sampler: it cannot write samples`);
  model.checkSample?.(request);
  // The whole file must match this model (Adam's moments too), as for a resume; only the params are read.
  checkpoint.check(model.tensors, stateNamesFor(config.optimizer.amsgrad === true));
  const flavor = resolveFlavor('auto');
  // No train or eval pass runs here: their shapes are one token, so that the arena holds the sample pass.
  const one = (kind: PassKind): PassShape => ({ kind, batch: 1, tokens: 1, lossScale: 1 });
  const shapes: Record<PassKind, PassShape> = {
    train: one('train'),
    eval: one('eval'),
    sample: { kind: 'sample', batch: Math.max(1, Math.min(request.count, kSampleBatch)), tokens: model.window, lossScale: 1 },
  };
  const plan = planArena(model, shapes, 1, matmulScratchBytes(flavor));
  const runner = new ReplicaRunner(model, plan, allocateArena(plan.bytes), flavor, null);
  model.tensors.forEach((t, i) => runner.setParam(i, checkpoint.readTensor(fileTensorName('params', t.name))));
  const inputsAt = runner.slotAt('sample', 'inputs') / 4;
  const logitsAt = runner.slotAt('sample', 'logits') / 4;
  return model.sample({
    ...request,
    maxBatch: shapes.sample.batch,
    lastLogits: (inputs, batch, tokens) => {
      runner.i32.set(inputs, inputsAt);
      runner.runSerial({ kind: 'sample', batch, tokens, lossScale: 1 }, 1, null);
      return runner.f32.subarray(logitsAt, logitsAt + batch * model.vocab);
    },
  });
}

async function tfjsSamples(config: TrainConfig, checkpoint: Checkpoint, request: Request): Promise<string[]> {
  const { module: mod, model, tensors, data } = await startModel({ ...config.model, seed: config.seed, backend: config.backend });
  if (!mod.sample) throw new Error(`model module ${config.model.module} has no sample() export: it cannot write samples`);
  checkpoint.check(tensors, stateNamesFor(config.optimizer.amsgrad === true));
  tensors.forEach((t, i) => {
    const values = checkpoint.readTensor(fileTensorName('params', t.name));
    tf.tidy(() => (model.trainableWeights[i].read() as TF.Variable).assign(tf.tensor(values, t.shape as number[], 'float32')));
  });
  return mod.sample({ tf, model, meta: data.meta, ...request });
}
