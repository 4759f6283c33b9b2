// `shardtrain export --to torch`: a checkpoint in torch's names and layouts, so that a run can go on in
// PyTorch (DDP, FSDP, DeepSpeed) exactly where it stopped. Two files:
//   FILE                 the weights under the equivalent torch module's state-dict names (the model
//                        module's torch() mapping), dense kernels transposed to Linear's [out, in]; the Adam
//                        state per parameter in the same layout (optimizer.exp_avg.<name>,
//                        optimizer.exp_avg_sq.<name>, optimizer.max_exp_avg_sq.<name> with AMSGrad); and in
//                        __metadata__ everything torch.optim needs to rebuild the optimizer: step, base lr,
//                        schedule and position, betas, eps, each parameter's weight decay and lr multiplier,
//                        clipping, the convention and the torch class it maps to.
//   FILE.data.safetensors  the training and held-out examples (arrays, or the token stream of a sequence
//                        model with its window and stride), and the data order's seed, so that
//                        scripts/torch/continue.py trains on the same batches.
// `pytorch` maps to torch.optim.AdamW and `l2` to torch.optim.Adam(weight_decay); other conventions, and
// cautious weight decay or a weight-decay schedule on any of them, have no torch optimizer: their weights
// export, their optimizer state does not (and the caller says so).

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { TensorSpec } from '../memory/layout.js';
import type { StateName } from '../memory/shard-states.js';
import type { ConventionKnobs } from '../optim/conventions.js';
import { resolveAdamwOptions, type AdamwOptions } from '../optim/options.js';
import { createSchedule } from '../optim/schedules.js';
import { CheckpointError, checkpointTempPath, fileTensorName } from './checkpoint.js';
import type { Checkpoint } from './open.js';
import { checkDataSet, isTokenWindows, loadModelModule, modelModuleUrl, windowCount, type ExampleSet, type TorchMapping } from '../models/model-module.js';
import { bytePieces, encodeHeader, type WrittenDtype } from './safetensors.js';

export const kTorchExportFormat = 'shardtrain-torch-1';

export type TorchOptimizer = 'AdamW' | 'Adam';

/** torch.optim's AdamW and Adam(weight_decay): bias-corrected, ε added to √v̂, decay decoupled or as L2, never cautious, λ constant. */
export function torchOptimizerFor(knobs: ConventionKnobs, constantDecay = true): TorchOptimizer | null {
  if (!knobs.biasCorrection || knobs.epsilonHat || knobs.cautiousWeightDecay || !constantDecay) return null;
  if (knobs.decay === 'decoupled') return 'AdamW';
  if (knobs.decay === 'l2') return 'Adam';
  return null;
}

export interface TorchExportResult {
  readonly file: string;
  readonly dataFile: string;
  readonly checkpoint: string;
  readonly step: number;
  readonly tensors: number;
  /** The torch optimizer the state is for, or null when the convention has none (weights only). */
  readonly optimizer: TorchOptimizer | null;
  readonly convention: string;
  /** The setting, in words: "convention adamc", "convention pytorch with cautiousWeightDecay". */
  readonly setting: string;
}

/** The data file written beside an export. */
export function exportDataPath(file: string): string {
  return file.replace(/(\.safetensors)?$/, '.data.safetensors');
}

interface Piece {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype?: WrittenDtype;
  readonly values: () => Float32Array | Int32Array;
}

/** A [rows, cols] row-major matrix transposed to [cols, rows]. */
function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

/** Write a safetensors file atomically (temp file, fsync, rename), one tensor in memory at a time. */
function writeFile(path: string, metadata: Record<string, string>, pieces: readonly Piece[]): void {
  const { head } = encodeHeader(metadata, pieces);
  const tmp = checkpointTempPath(path);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, head);
    for (const p of pieces) for (const piece of bytePieces(p.values())) writeSync(fd, piece);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** The mapping, checked: every tensor once, torch names unique, transposes only of matrices. */
function checkMapping(mapping: TorchMapping, tensors: readonly TensorSpec[], url: string): Map<string, { torchName: string; transpose: boolean }> {
  const byName = new Map(mapping.tensors.map((t) => [t.name, t]));
  const torchNames = new Set<string>();
  for (const t of tensors) {
    const m = byName.get(t.name);
    if (!m) throw new Error(`model module ${url}: torch() maps no torch name to tensor "${t.name}"`);
    if (torchNames.has(m.torchName)) throw new Error(`model module ${url}: torch() gives the torch name "${m.torchName}" twice`);
    torchNames.add(m.torchName);
    if (m.transpose && t.shape.length !== 2) throw new Error(`model module ${url}: torch() transposes "${t.name}", which has shape [${t.shape}] (only matrices transpose)`);
  }
  if (byName.size !== tensors.length) throw new Error(`model module ${url}: torch() maps ${byName.size} tensors, the checkpoint has ${tensors.length}`);
  return byName;
}

/**
 * A split's examples for the data file: `<split>.x` and `<split>.y` for example arrays, or `<split>.tokens`
 * for token windows (whose window and stride go into the file's metadata: example i is tokens[i·stride, +window)).
 */
function examplePieces(prefix: string, e: ExampleSet, count: number): Piece[] {
  if (isTokenWindows(e)) {
    // int32 whatever the model holds (a prepared directory's uint16 ids): torch 1.13 has no uint16, and
    // continue.py reads int32. The widened copy lives only while this piece is written.
    const tokens = e.tokens;
    return [{ name: `${prefix}.tokens`, shape: [tokens.length], dtype: 'I32', values: () => (tokens instanceof Int32Array ? tokens : Int32Array.from(tokens)) }];
  }
  const dtype = (a: Int32Array | Float32Array): WrittenDtype => (a instanceof Int32Array ? 'I32' : 'F32');
  return [
    { name: `${prefix}.x`, shape: [count, ...e.xShape], dtype: dtype(e.x), values: () => e.x },
    { name: `${prefix}.y`, shape: [count, ...e.yShape], dtype: dtype(e.y), values: () => e.y },
  ];
}

/**
 * What an export needs of the run besides the checkpoint's tensors: its config (the parts named here are
 * used; the whole of it is recorded) and its optimizer options, both validated by the caller (train's
 * config rules live above this folder).
 */
export interface TorchExportRun {
  readonly config: { readonly model: { readonly module: string; readonly options: Readonly<Record<string, unknown>> }; readonly seed: number };
  /** The optimizer options, given the data set's example counts (a weight-decay timescale in epochs needs them). */
  readonly adamw: (counts: { readonly train: number }) => AdamwOptions;
}

/**
 * Export an opened checkpoint to `out` and its data file. Everything is read and checked before either
 * file is written.
 */
export async function writeTorchExport(checkpoint: Checkpoint, run: TorchExportRun, out: string): Promise<TorchExportResult> {
  const { header, metadata: meta } = checkpoint;
  const { config } = run;
  const url = modelModuleUrl(config.model.module);
  const mod = await loadModelModule(url);
  if (typeof mod.torch !== 'function') throw new Error(`export --to torch: model module ${config.model.module} has no torch() mapping (the README's "Outgrowing one machine" says what it needs)`);

  const tensors = checkpoint.tensors;
  const mapping = mod.torch({ options: config.model.options, tensors });
  const torchOf = checkMapping(mapping, tensors, config.model.module);
  const data = await mod.loadData({ options: config.model.options, seed: config.seed });
  const counts = checkDataSet(data, url);
  const math = resolveAdamwOptions(run.adamw(counts), tensors.map((t) => t.name));
  const constantDecay = math.weightDecaySchedule !== 'lr' && math.weightDecaySchedule.name === 'constant';
  const optimizer = torchOptimizerFor(math.knobs, constantDecay);
  const setting = `convention ${math.convention}${math.knobs.cautiousWeightDecay ? ' with cautiousWeightDecay' : ''}${constantDecay ? '' : ' with a weightDecaySchedule'}`;
  const states: StateName[] = optimizer === null ? ['params'] : math.knobs.amsgrad ? ['params', 'm', 'v', 'vmax'] : ['params', 'm', 'v'];
  for (const state of states) for (const t of tensors) if (!header.tensors.has(fileTensorName(state, t.name))) throw new CheckpointError(header.path, `tensor "${fileTensorName(state, t.name)}" is missing`);

  const torchState: Record<StateName, string> = { params: '', m: 'optimizer.exp_avg.', v: 'optimizer.exp_avg_sq.', vmax: 'optimizer.max_exp_avg_sq.' };
  const pieces: Piece[] = states.flatMap((state) =>
    tensors.map((t) => {
      const { torchName, transpose: flip } = torchOf.get(t.name)!;
      return {
        name: `${torchState[state]}${torchName}`,
        shape: flip ? [t.shape[1], t.shape[0]] : t.shape,
        values: () => {
          const x = checkpoint.readTensor(fileTensorName(state, t.name));
          return flip ? transpose(x, t.shape[0], t.shape[1]) : x;
        },
      };
    }),
  );
  const schedule = createSchedule(math.schedule);
  const metadata: Record<string, string> = {
    format: kTorchExportFormat,
    source: header.path,
    step: String(meta.step),
    convention: math.convention,
    optimizer: optimizer ?? 'none',
    lr: String(math.lr),
    // The lr the next step (meta.step, 0-based) uses: schedule(step) × lr.
    next_lr: String(schedule.lrAt(meta.step)),
    schedule: JSON.stringify(math.schedule),
    betas: JSON.stringify(math.betas),
    eps: String(math.eps),
    amsgrad: String(math.knobs.amsgrad),
    clip: JSON.stringify({ globalNorm: math.clipGlobalNorm ?? null, value: math.clipValue ?? null }),
    param_groups: JSON.stringify(math.decayTable.map((e) => ({ name: torchOf.get(e.name)!.torchName, weight_decay: e.weightDecay, lr_multiplier: e.lrMultiplier }))),
    model: JSON.stringify({ module: mapping.module, options: mapping.options }),
    data: JSON.stringify(meta.data),
    config: JSON.stringify(config),
  };

  const windows = (e: ExampleSet) => (isTokenWindows(e) ? { window: e.window, stride: e.stride ?? 1, count: windowCount(e) } : null);
  const dataFile = exportDataPath(out);
  writeFile(dataFile, { format: kTorchExportFormat, data: JSON.stringify(meta.data), windows: JSON.stringify({ train: windows(data.train), eval: windows(data.eval) }) }, [
    ...examplePieces('train', data.train, counts.train),
    ...examplePieces('eval', data.eval, counts.eval),
  ]);
  writeFile(out, metadata, pieces);
  return { file: out, dataFile, checkpoint: header.path, step: meta.step, tensors: tensors.length, optimizer, convention: math.convention, setting };
}
