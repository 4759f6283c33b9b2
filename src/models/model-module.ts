// The model-module contract. A model is user code: an ES module that builds a tfjs LayersModel, gives the
// data as flat arrays, and computes a mean loss. It is imported once on the main thread (initial values,
// tensor names and shapes, eval, samples) and once in every pool thread (the replicas).
//
//   export function createModel({ tf, tfl, options, seed }) → tfl.LayersModel
//   export function loadData({ options, seed })            → { train: Examples | TokenWindows, eval: …, meta? }
//   export function loss({ tf, model, x, y })              → scalar tensor, the mean over the batch
//   export function sample?({ tf, model, count, seed, meta, prompt?, tokens?, temperature?, topK? }) → string[]  (optional)
//   export function loadMeta?({ options, seed })            → loadData()'s meta without the data (optional: sampling)
//   export function initSource?({ options })                → InitSource | null (optional: initial values from a file)
//
// Tensor names are the tfjs variable names before tfjs makes them unique (LayerVariable.originalName), so
// name your layers: exclusion rules such as BERT's ["LayerNorm", "layer_norm", "bias"] match them.

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TF from '@tensorflow/tfjs-core';
import type * as TFL from '@tensorflow/tfjs-layers';
import type { TensorSpec } from '../memory/layout.js';
import { initTf, tf, tfl, type BackendName } from '../tfjs/tf.js';

export type { TensorSpec } from '../memory/layout.js';

export type Tf = typeof TF;
export type Tfl = typeof TFL;
export type LayersModel = TFL.LayersModel;

/** Examples as flat arrays: example i is x[i·xSize, (i+1)·xSize) with xSize = product of xShape. */
export interface Examples {
  readonly x: Int32Array | Float32Array;
  readonly y: Int32Array | Float32Array;
  /** Shape of one example's input and target (without the batch dimension). */
  readonly xShape: readonly number[];
  readonly yShape: readonly number[];
}

/**
 * Windows over one long token sequence, for sequence models: example i is the input
 * tokens[s, s + window) and the target tokens[s + 1, s + window + 1), s = i·stride (x and y of shape
 * [window]). The windows are cut when a batch is gathered, never materialised: every offset of a 10 M
 * character text with a window of 128 would take 10 GB as Examples. The tokens are int32, or uint16 as a
 * prepared directory's .bin files hold them; an array over a SharedArrayBuffer is handed to the threads as
 * it is (one copy for every thread), any other is copied into one once.
 */
export interface TokenWindows {
  readonly tokens: Int32Array | Uint16Array;
  readonly window: number;
  /** Start of example i is i·stride. Default 1: every offset is an example. */
  readonly stride?: number;
}

/** Either kind of example set; `'tokens' in e` tells them apart. */
export type ExampleSet = Examples | TokenWindows;

export function isTokenWindows(e: ExampleSet): e is TokenWindows {
  return 'tokens' in e;
}

export interface DataSet {
  readonly train: ExampleSet;
  readonly eval: ExampleSet;
  /** Anything sample() needs (a vocabulary...); structured-cloneable. */
  readonly meta?: unknown;
}

/** What sample() is asked for; prompt, tokens, temperature and topK are optional (a module may ignore them). */
export interface SampleContext {
  readonly tf: Tf;
  readonly model: LayersModel;
  readonly count: number;
  readonly seed: number;
  readonly meta: unknown;
  /** Text to continue (sequence models). */
  readonly prompt?: string;
  /** Tokens to generate per sample. */
  readonly tokens?: number;
  /** Softmax temperature: 1 samples the model's distribution, 0 takes the most likely token. */
  readonly temperature?: number;
  /** Draw only from the k most likely tokens (nanoGPT's sample.py --top_k). Default: all. */
  readonly topK?: number;
}

/**
 * Initial values read from a file instead of the model's own (createModel's, or an engine model's
 * initialValues()): the trainer opens it, checks every tensor's name and shape against the model before any
 * value is read, and reads it into the parameters before the first step; a resume reads the checkpoint
 * instead. `gpt2`: a GPT-2 `model.safetensors` in Hugging Face's layout (src/checkpoint/gpt2-import.ts).
 */
export interface InitSource {
  readonly format: 'gpt2';
  /** As the config gives it: relative to the working directory. */
  readonly path: string;
}

/**
 * How a model's tensors map onto the equivalent torch module, for `shardtrain export --to torch`: the class
 * in scripts/torch/shardtrain_torch.py that computes the same forward pass, its constructor options, and
 * each tensor's state-dict name (with `transpose` for a dense kernel [in, out] → torch Linear.weight [out, in]).
 */
export interface TorchMapping {
  readonly module: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly tensors: readonly { readonly name: string; readonly torchName: string; readonly transpose: boolean }[];
}

export interface ModelModule {
  createModel(ctx: { tf: Tf; tfl: Tfl; options: Readonly<Record<string, unknown>>; seed: number }): LayersModel;
  loadData(ctx: { options: Readonly<Record<string, unknown>>; seed: number }): DataSet | Promise<DataSet>;
  loss(ctx: { tf: Tf; model: LayersModel; x: TF.Tensor; y: TF.Tensor }): TF.Scalar;
  sample?(ctx: SampleContext): string[];
  /** Optional: loadData()'s meta alone, cheaply (sampling from a checkpoint needs the vocabulary, not the data). */
  loadMeta?(ctx: { options: Readonly<Record<string, unknown>>; seed: number }): unknown;
  /** Optional: where the initial values come from instead (see InitSource), or null. */
  initSource?(ctx: { options: Readonly<Record<string, unknown>> }): InitSource | null;
  /** Optional: the torch equivalent of the model (see TorchMapping); without it, export --to torch refuses. */
  torch?(ctx: { options: Readonly<Record<string, unknown>>; tensors: readonly TensorSpec[] }): TorchMapping;
}

/** Built-in models, by the name a config gives as `model.module`. */
export const builtinModels: Readonly<Record<string, string>> = Object.freeze({
  'char-lm': new URL('./char-lm.js', import.meta.url).href,
  gpt: new URL('./gpt.js', import.meta.url).href,
});

/** file: URL of a model module: a built-in name, a file: URL, or a path (relative to `base`, default cwd). */
export function modelModuleUrl(spec: string, base = process.cwd()): string {
  if (Object.hasOwn(builtinModels, spec)) return builtinModels[spec];
  if (spec.startsWith('file:')) return spec;
  return pathToFileURL(isAbsolute(spec) ? spec : resolve(base, spec)).href;
}

/** Import and check the contract; errors name the module and the missing export. */
export async function loadModelModule(url: string): Promise<ModelModule> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`model module ${url} could not be imported: ${(err as Error).message.split('\n')[0]}`);
  }
  for (const name of ['createModel', 'loadData', 'loss'] as const) {
    if (typeof mod[name] !== 'function') throw new TypeError(`model module ${url} must export a function ${name}() (see the model-module contract in the README)`);
  }
  for (const name of ['sample', 'torch', 'loadMeta', 'initSource'] as const) {
    if (mod[name] !== undefined && typeof mod[name] !== 'function') throw new TypeError(`model module ${url}: export ${name} must be a function`);
  }
  return mod as unknown as ModelModule;
}

/** The model's trainable tensors, in order, under their tfjs names. */
export function modelTensors(model: LayersModel, url: string): TensorSpec[] {
  if (model === null || typeof model !== 'object' || !Array.isArray((model as { trainableWeights?: unknown }).trainableWeights)) {
    throw new TypeError(`model module ${url}: createModel() must return a tfjs LayersModel (tfl.sequential / tfl.model)`);
  }
  if (model.nonTrainableWeights.length > 0) {
    throw new TypeError(`model module ${url}: non-trainable weights are not supported (${model.nonTrainableWeights[0].name})`);
  }
  const seen = new Set<string>();
  const specs = model.trainableWeights.map((w) => {
    const name = w.originalName;
    if (seen.has(name)) throw new RangeError(`model module ${url}: two tensors are named "${name}": give your layers unique names`);
    seen.add(name);
    const shape = [...w.shape] as number[];
    return { name, shape, size: shape.reduce((a, d) => a * d, 1) };
  });
  if (specs.length === 0) throw new RangeError(`model module ${url}: the model has no trainable weights`);
  return specs;
}

/** Number of elements of one example's input/target. */
export function exampleSize(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** Number of windows in a TokenWindows set (0 when the text is shorter than one window plus its target). */
export function windowCount(e: TokenWindows): number {
  const stride = e.stride ?? 1;
  return e.tokens.length < e.window + 1 ? 0 : Math.floor((e.tokens.length - e.window - 1) / stride) + 1;
}

/** Tokens per example for sequence models (TokenWindows: the window), else null. */
export function tokensPerExample(e: ExampleSet): number | null {
  return isTokenWindows(e) ? e.window : null;
}

function countWindows(e: TokenWindows, url: string, which: string): number {
  const int = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 1;
  if (!(e.tokens instanceof Int32Array || e.tokens instanceof Uint16Array)) throw new TypeError(`model module ${url}: loadData().${which}.tokens must be an Int32Array or a Uint16Array`);
  if (!int(e.window)) throw new RangeError(`model module ${url}: loadData().${which}.window must be a positive integer, got ${JSON.stringify(e.window)}`);
  if (e.stride !== undefined && !int(e.stride)) throw new RangeError(`model module ${url}: loadData().${which}.stride must be a positive integer, got ${JSON.stringify(e.stride)}`);
  const n = windowCount(e);
  if (n === 0) throw new RangeError(`model module ${url}: loadData().${which} has ${e.tokens.length} tokens, fewer than one window of ${e.window} and its target`);
  return n;
}

/** Check the data set's arrays agree with their shapes; returns the example counts. */
export function checkDataSet(data: DataSet, url: string): { train: number; eval: number } {
  const count = (e: ExampleSet | undefined, which: string): number => {
    if (e && typeof e === 'object' && isTokenWindows(e)) return countWindows(e, url, which);
    if (!e || !(e.x instanceof Int32Array || e.x instanceof Float32Array) || !(e.y instanceof Int32Array || e.y instanceof Float32Array)) {
      throw new TypeError(`model module ${url}: loadData().${which} must have x and y as Int32Array or Float32Array (or tokens and window)`);
    }
    const xs = exampleSize(e.xShape);
    const ys = exampleSize(e.yShape);
    const n = e.x.length / xs;
    if (!Number.isInteger(n) || e.y.length !== n * ys) throw new RangeError(`model module ${url}: loadData().${which}: x and y lengths do not match xShape/yShape`);
    if (n === 0) throw new RangeError(`model module ${url}: loadData().${which} has no examples`);
    return n;
  };
  return { train: count(data?.train, 'train'), eval: count(data?.eval, 'eval') };
}

/** A model module started on this thread: tfjs, the module, its model and its data, all checked. */
export interface StartedModel {
  readonly backend: BackendName;
  readonly url: string;
  readonly module: ModelModule;
  readonly model: LayersModel;
  readonly tensors: TensorSpec[];
  readonly data: DataSet;
  readonly counts: { readonly train: number; readonly eval: number };
}

/**
 * The one start-up of a model, used by the coordinator, every replica and the benchmarks: load tfjs on
 * `backend`, import the module (a built-in name, a path or a file: URL), build the model for `seed`, load
 * its data (unless `data` gives it: the coordinator's, in shared memory, which a replica does not load
 * again), and check both against the contract.
 */
export async function startModel(spec: { module: string; options: Readonly<Record<string, unknown>>; seed: number; backend: BackendName; data?: DataSet }): Promise<StartedModel> {
  const backend = await initTf(spec.backend);
  const url = modelModuleUrl(spec.module);
  const mod = await loadModelModule(url);
  const model = mod.createModel({ tf, tfl, options: spec.options, seed: spec.seed });
  const tensors = modelTensors(model, url);
  const data = spec.data ?? (await mod.loadData({ options: spec.options, seed: spec.seed }));
  const counts = checkDataSet(data, url);
  return { backend, url, module: mod, model, tensors, data, counts };
}
