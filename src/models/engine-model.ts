// The contract of a built-in model on shardtrain's own engine (train/shardtrain-engine.ts): its tensors and
// their initial values, the arena slots each kind of pass needs, and the pass itself as a list of layer calls
// (nn/), forward down and backward up. The engine owns everything else: the arena, the threads, the batch,
// the parameters' copy-in and the gradients' hand-off to the optimizer (the flush hook).
//
// Passes:
//   train   forward, loss, backward over `batch` examples of the full window; gradients handed off group
//           by group as the backward completes them (the arena holds the largest group, not the model)
//   eval    forward and loss only (no activation is kept for a backward)
//   sample  forward only, logits of the last position of each of `batch` sequences of `tokens` ≤ window
//           tokens (the model's sampler reads them)

import type { TensorSpec } from '../memory/layout.js';
import type { SlotSpec } from '../nn/arena.js';
import type { Kernels } from '../nn/kernels.js';
import type { Program, Ptr } from '../nn/program.js';

export type PassKind = 'train' | 'eval' | 'sample';

/** The shape of one pass: examples, and tokens per example (sequence models; the window when training). */
export interface PassShape {
  readonly kind: PassKind;
  readonly batch: number;
  readonly tokens: number;
  /**
   * train: the factor of the loss's gradient, 1/(loss rows of the replica's k micro-batches), so that the
   * gradients handed off are those of the replica's mean loss (1 for the other passes).
   */
  readonly lossScale: number;
}

/** Where a pass finds its buffers in the arena (byte offsets). */
export interface PassAddresses {
  /** Tensor i's values (the copy of the parameters). */
  param(tensor: number): Ptr;
  /** Tensor i's gradient home (train). */
  grad(tensor: number): Ptr;
  /** One of the model's own slots (as it declared them for this pass). */
  slot(name: string): Ptr;
  /** Inputs, int32: batch × inputElements(tokens). */
  readonly inputs: Ptr;
  /** Targets, int32: batch × targetElements(tokens) (train and eval). */
  readonly targets: Ptr;
  /** Per-row losses, float32: batch × lossRows(tokens) (train and eval). */
  readonly losses: Ptr;
  /** Logits of the last position, float32: batch × vocab (sample). */
  readonly logits: Ptr;
}

export interface PassHooks {
  /** Push the phase that hands gradient group `group` (EngineModel.gradGroups) to the optimizer. */
  flush(group: number): void;
}

/** What a sampler asks of the engine: the logits of the last position of each sequence. */
export type LastLogits = (inputs: Int32Array, batch: number, tokens: number) => Float32Array;

export interface EngineSampleRequest {
  readonly lastLogits: LastLogits;
  /** Sequences the engine takes at once (its arena's capacity for a sample pass). */
  readonly maxBatch: number;
  readonly count: number;
  readonly seed: number;
  readonly prompt?: string;
  readonly tokens?: number;
  readonly temperature?: number;
  readonly topK?: number;
}

export interface EngineModel {
  readonly tensors: readonly TensorSpec[];
  /** Output classes of the last layer (logits per row). */
  readonly vocab: number;
  /** Tokens per example (the window) for sequence models, 1 for the others. */
  readonly window: number;
  /** int32 inputs, targets and loss rows per example, for examples of `tokens` tokens. */
  inputElements(tokens: number): number;
  targetElements(tokens: number): number;
  lossRows(tokens: number): number;
  /** Initial values of every tensor, in order: the same bits as the tfjs engine's createModel for the seed. */
  initialValues(seed: number): Float32Array[];
  /** Gradient groups in the order the backward completes them (tensor indices); each tensor in exactly one. */
  readonly gradGroups: readonly (readonly number[])[];
  /** Tensors whose gradient is written before its group is complete (a tied embedding): a home of their own. */
  readonly persistentGrads: readonly number[];
  /** The model's own slots for a pass of this shape (inputs, targets, losses, logits, params, grads are the engine's). */
  slots(shape: PassShape): SlotSpec[];
  /** Scratch bytes each member needs for a pass of this shape, besides the GEMM's. */
  scratchBytes(shape: PassShape): number;
  /** Push the phases of a pass. */
  build(p: Program, k: Kernels, at: PassAddresses, shape: PassShape, hooks: PassHooks): void;
  /** Text from the model (without: the model cannot sample). */
  sample?(request: EngineSampleRequest): string[];
  /** Refuse a bad sample request (prompt, length, temperature, topK) in one line, before any pass runs. */
  checkSample?(request: Omit<EngineSampleRequest, 'lastLogits' | 'maxBatch'>): void;
}
