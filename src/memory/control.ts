// The control block: a small SharedArrayBuffer the coordinator writes once per step and every thread reads.
// Float64 fields, so the per-step scalars reach the kernels exactly as computed on the host.

export const kBeta1Field = 0;
export const kBeta2Field = 1;
export const kOneMinusBeta1Field = 2;
export const kOneMinusBeta2Field = 3;
export const kEpsField = 4;
/** Multiplier of √v in the denominator: 1/√bc2 (torch ε placement) or 1 (ε̂ placement). */
export const kSqrtScaleField = 5;
/** 1/R: the replica mean. */
export const kInvSlotsField = 6;
/** Elementwise clip bound (Infinity when off). */
export const kClipValueField = 7;
/** Global-norm clip factor for this step (1 when off or not needed). */
export const kClipScaleField = 8;
/**
 * 1 for cautious weight decay: the decay factors apply only where the update and p agree in sign (m'·p ≥ 0),
 * else 0. A field rather than a kernel choice, so the coordinator alone decides and every thread reads it.
 */
export const kCautiousField = 9;
export const kGlobalFields = 10;

/** Per-tensor scalars, at kGlobalFields + kTensorStride·tensor. */
export const kDecayPreOffset = 0;
export const kStepSizeOffset = 1;
export const kDecayPostOffset = 2;
export const kL2Offset = 3;
export const kTensorStride = 4;

/** Floats per fixed reduction chunk: partial sums of squares are per chunk, whatever the thread/shard count. */
export const kNormChunkFloats = 16384;

/** Int32 fields at the start of the buffer (before the float64 area). */
export const kGenerationField = 0;
/**
 * The gradient epoch: which step's gradients are being written. It moves on after every step, so a slot's
 * stamp below is valid for one step only.
 */
export const kGradEpochField = 1;
/**
 * Per gradient slot (at most kMaxGradSlots): the epoch in which the slot was written whole through the
 * checked writer (every element finite and |x| <= kCheckedBound), or 0. A step whose slots are all stamped
 * with the current epoch needs no separate non-finite scan.
 */
export const kCheckedStampBase = 2;
export const kMaxGradSlots = 64;
const kInt32Fields = kCheckedStampBase + kMaxGradSlots;
const kFloat64Base = (kInt32Fields * 4) / 8;

export interface ControlBlock {
  readonly buffer: SharedArrayBuffer;
  readonly ints: Int32Array;
  /** Global scalars, per-tensor scalars, then one partial sum per norm chunk. */
  readonly scalars: Float64Array;
  readonly tensorCount: number;
  readonly chunkCount: number;
  /** Index in `scalars` of chunk 0's partial sum. */
  readonly partialsBase: number;
}

export function normChunkCount(totalSize: number): number {
  return Math.max(1, Math.ceil(totalSize / kNormChunkFloats));
}

export function tensorField(tensor: number, offset: number): number {
  return kGlobalFields + kTensorStride * tensor + offset;
}

export function createControlBlock(tensorCount: number, totalSize: number): ControlBlock {
  const chunkCount = normChunkCount(totalSize);
  const partialsBase = kGlobalFields + kTensorStride * tensorCount;
  const buffer = new SharedArrayBuffer(kFloat64Base * 8 + (partialsBase + chunkCount) * 8);
  const block = viewControlBlock(buffer, tensorCount, totalSize);
  block.ints[kGradEpochField] = 1; // a stamp of 0 is never current
  return block;
}

/** Views of a control block received from another thread. */
export function viewControlBlock(buffer: SharedArrayBuffer, tensorCount: number, totalSize: number): ControlBlock {
  const chunkCount = normChunkCount(totalSize);
  const partialsBase = kGlobalFields + kTensorStride * tensorCount;
  return {
    buffer,
    ints: new Int32Array(buffer, 0, kInt32Fields),
    scalars: new Float64Array(buffer, kFloat64Base * 8, partialsBase + chunkCount),
    tensorCount,
    chunkCount,
    partialsBase,
  };
}
