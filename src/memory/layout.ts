// Where every float lives. A model is a list of named float32 tensors laid end to end in one flat index
// space; the space is cut into S shards of near-equal size on 16-float (64-byte) boundaries. A tensor may
// span two or more shards (ZeRO's flat partition), so kernels walk *segments*: tensor ∩ shard.

/** Floats per alignment unit: 16 float32 = 64 bytes, one cache line and four f32x4 vectors. */
export const kAlignFloats = 16;
/** One shard's states live in one wasm32 memory, which holds at most 4 GiB (65536 pages of 64 KiB). */
export const kMaxMemoryBytes = 65536 * 65536;
/** Bytes a shard may not use for states: headroom below the 4 GiB cap. */
const kMemoryHeadroomBytes = 64 * 65536;

/** A named float32 tensor: its shape and element count (the product of the shape). */
export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly size: number;
}

export interface TensorPlacement {
  readonly name: string;
  readonly index: number;
  /** First element in the flat index space. */
  readonly offset: number;
  readonly size: number;
}

/** A contiguous run of one tensor inside one shard. */
export interface Segment {
  readonly tensor: number;
  readonly shard: number;
  /** Flat index of the first element. */
  readonly globalStart: number;
  /** Index of the first element inside the shard. */
  readonly shardStart: number;
  /** Index of the first element inside the tensor. */
  readonly tensorStart: number;
  readonly length: number;
}

export interface ShardRange {
  readonly index: number;
  /** Flat index of the shard's first element. */
  readonly start: number;
  /** Elements in the shard (a multiple of kAlignFloats except possibly the last). */
  readonly size: number;
  /** Capacity in floats of each state region: size rounded up to kAlignFloats. */
  readonly capacity: number;
}

export interface Layout {
  readonly tensors: readonly TensorPlacement[];
  readonly totalSize: number;
  readonly shards: readonly ShardRange[];
  /** Ordered by globalStart; covers [0, totalSize) without gaps or overlap. */
  readonly segments: readonly Segment[];
}

/** States a shard keeps per parameter: params, m, v, optional v_max, then the gradient slots. */
export function bytesPerParam(gradSlots: number, amsgrad: boolean): number {
  return 4 * (3 + (amsgrad ? 1 : 0) + gradSlots);
}

/** The largest shard (in floats, aligned) whose states fit in one wasm32 memory. */
export function maxShardFloats(gradSlots: number, amsgrad: boolean): number {
  const fit = Math.floor((kMaxMemoryBytes - kMemoryHeadroomBytes) / bytesPerParam(gradSlots, amsgrad));
  return fit - (fit % kAlignFloats);
}

function alignUp(n: number): number {
  return Math.ceil(n / kAlignFloats) * kAlignFloats;
}

/**
 * Lay tensors out and cut the flat space into shards of at most `shardLimit` floats. The shard count is
 * the fewest that respect the limit; sizes are then equalised, so it depends on the model, never on the
 * thread count.
 */
export function computeLayout(specs: readonly Pick<TensorSpec, 'name' | 'size'>[], shardLimit: number): Layout {
  if (!Number.isInteger(shardLimit) || shardLimit < kAlignFloats || shardLimit % kAlignFloats !== 0) {
    throw new RangeError(`shard size limit must be a positive multiple of ${kAlignFloats} floats, got ${shardLimit}`);
  }
  const tensors: TensorPlacement[] = [];
  let totalSize = 0;
  specs.forEach((spec, index) => {
    tensors.push({ name: spec.name, index, offset: totalSize, size: spec.size });
    totalSize += spec.size;
  });

  const shardCount = Math.max(1, Math.ceil(totalSize / shardLimit));
  const nominal = Math.min(shardLimit, alignUp(Math.ceil(totalSize / shardCount)));
  const shards: ShardRange[] = [];
  for (let s = 0, start = 0; s < shardCount; s++) {
    const size = s === shardCount - 1 ? totalSize - start : nominal;
    shards.push({ index: s, start, size, capacity: Math.max(kAlignFloats, alignUp(size)) });
    start += size;
  }

  const segments: Segment[] = [];
  let shard = 0;
  for (const t of tensors) {
    let at = t.offset;
    const end = t.offset + t.size;
    while (at < end) {
      while (shards[shard].start + shards[shard].size <= at) shard++;
      const s = shards[shard];
      const length = Math.min(end, s.start + s.size) - at;
      segments.push({ tensor: t.index, shard, globalStart: at, shardStart: at - s.start, tensorStart: at - t.offset, length });
      at += length;
    }
  }
  return { tensors, totalSize, shards, segments };
}

/** Index of the first segment that ends after `globalIndex` (binary search; segments are ordered). */
export function firstSegmentAt(layout: Layout, globalIndex: number): number {
  const segs = layout.segments;
  let lo = 0;
  let hi = segs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (segs[mid].globalStart + segs[mid].length <= globalIndex) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * First index of part `part` of `parts` when [0, total) is cut into contiguous parts whose boundaries are
 * multiples of `unit`, as equal as the unit allows (part `parts` gives `total`). Every split in shardtrain
 * is this one: which thread updates which elements, the fixed norm chunks, parallelFor's ranges.
 */
export function partBoundary(total: number, part: number, parts: number, unit: number): number {
  return Math.min(total, Math.floor((Math.ceil(total / unit) * part) / parts) * unit);
}
