// Which thread touches which bytes. The flat index space is cut into `parts` contiguous ranges on
// norm-chunk boundaries (partStart); part k — run by whichever thread took task k, or inline — reads and
// writes only the elements of its range, in every shard that range crosses. Results therefore do not
// depend on the thread count: each element sees the same kernel, each chunk's partial sum the same order.

import { kNormChunkFloats, type ControlBlock } from '../memory/control.js';
import { firstSegmentAt, partBoundary, type Layout } from '../memory/layout.js';
import type { ShardStates } from '../memory/shard-states.js';
import { kSumLanes, sumLanes, type ShardKernels } from '../kernels/adamw-js.js';

export interface StepContext {
  readonly layout: Layout;
  readonly shards: readonly ShardStates[];
  readonly control: ControlBlock;
  readonly kernels: ShardKernels;
}

export type StepPhase = 'norm' | 'update';

/** First element of part k of `parts` (part `parts` gives the end), on norm-chunk boundaries. */
export function partStart(totalSize: number, part: number, parts: number): number {
  return partBoundary(totalSize, part, parts, kNormChunkFloats);
}

/** An error that says where it happened: which phase, tensor and shard. */
export class ShardTaskError extends Error {
  constructor(
    message: string,
    readonly phase: StepPhase,
    readonly tensor: string,
    readonly shard: number,
  ) {
    super(message);
    this.name = 'ShardTaskError';
  }
}

function withContext(ctx: StepContext, phase: StepPhase, seg: number, err: unknown): ShardTaskError {
  const s = ctx.layout.segments[seg];
  const name = ctx.layout.tensors[s.tensor].name;
  const msg = err instanceof Error ? err.message : String(err);
  return new ShardTaskError(`${phase} of tensor "${name}" in shard ${s.shard} failed: ${msg}`, phase, name, s.shard);
}

const lanes = new Float64Array(kSumLanes);

/** Phase 1: one float64 partial sum of squares per norm chunk of this part, into the control block. */
export function runNormPart(ctx: StepContext, part: number, parts: number): void {
  const { layout, shards, control, kernels } = ctx;
  const a = partStart(layout.totalSize, part, parts);
  const b = partStart(layout.totalSize, part + 1, parts);
  const s = control.scalars;
  const segs = layout.segments;
  let k = firstSegmentAt(layout, a);
  try {
    for (let c0 = a; c0 < b; c0 += kNormChunkFloats) {
      const c1 = Math.min(b, c0 + kNormChunkFloats);
      lanes.fill(0);
      // Segments are in flat order; a chunk may take pieces of several, and a segment may feed several chunks.
      while (k < segs.length && segs[k].globalStart + segs[k].length <= c0) k++;
      for (let j = k; j < segs.length && segs[j].globalStart < c1; j++) {
        k = j;
        const seg = segs[j];
        const from = Math.max(c0, seg.globalStart);
        const to = Math.min(c1, seg.globalStart + seg.length);
        const local = seg.shardStart - seg.globalStart;
        kernels.sumSquares(shards[seg.shard], from + local, to + local, s, lanes, (from - c0) & (kSumLanes - 1));
      }
      s[control.partialsBase + c0 / kNormChunkFloats] = sumLanes(lanes);
    }
  } catch (err) {
    throw withContext(ctx, 'norm', k, err);
  }
}

/** Phase 2: the fused replica reduction + AdamW update of this part. */
export function runUpdatePart(ctx: StepContext, part: number, parts: number): void {
  const { layout, shards, control, kernels } = ctx;
  const a = partStart(layout.totalSize, part, parts);
  const b = partStart(layout.totalSize, part + 1, parts);
  const segs = layout.segments;
  let k = firstSegmentAt(layout, a);
  try {
    for (; k < segs.length && segs[k].globalStart < b; k++) {
      const seg = segs[k];
      const local = seg.shardStart - seg.globalStart;
      const from = Math.max(a, seg.globalStart) + local;
      const to = Math.min(b, seg.globalStart + seg.length) + local;
      kernels.update(shards[seg.shard], from, to, control.scalars, seg.tensor);
    }
  } catch (err) {
    throw withContext(ctx, 'update', k, err);
  }
}

export function runPart(ctx: StepContext, phase: StepPhase, part: number, parts: number): void {
  if (phase === 'norm') runNormPart(ctx, part, parts);
  else runUpdatePart(ctx, part, parts);
}
