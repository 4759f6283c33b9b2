// Live views of one tensor's elements. A tensor inside one shard is a plain Float32Array over shared
// memory; one that spans shards cannot be (a typed array covers one buffer), so it gets a SplitTensorView
// with the same everyday methods: length, set, fill, at, and a copy out.

import type { Layout } from './layout.js';
import type { ShardStates, StateName } from './shard-states.js';

export class SplitTensorView {
  readonly length: number;
  /** The pieces, in order; each a live Float32Array over one shard's memory. */
  readonly parts: readonly Float32Array[];

  constructor(parts: readonly Float32Array[]) {
    this.parts = parts;
    this.length = parts.reduce((n, p) => n + p.length, 0);
  }

  /** Like TypedArray.prototype.set: copy `source` in, starting at element `offset`. */
  set(source: ArrayLike<number>, offset = 0): void {
    if (offset < 0 || offset + source.length > this.length) {
      throw new RangeError(`offset ${offset} + ${source.length} elements is out of bounds for a tensor of ${this.length}`);
    }
    let base = 0;
    for (const part of this.parts) {
      const from = Math.max(offset, base);
      const to = Math.min(offset + source.length, base + part.length);
      for (let i = from; i < to; i++) part[i - base] = source[i - offset];
      base += part.length;
    }
  }

  fill(value: number): this {
    for (const part of this.parts) part.fill(value);
    return this;
  }

  at(index: number): number | undefined {
    let i = index < 0 ? index + this.length : index;
    if (i < 0 || i >= this.length) return undefined;
    for (const part of this.parts) {
      if (i < part.length) return part[i];
      i -= part.length;
    }
    return undefined;
  }

  /** A copy of the whole tensor. */
  slice(): Float32Array {
    const out = new Float32Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

/** Float32Array when the tensor lies in one shard, SplitTensorView when it spans several. */
export type TensorView = Float32Array | SplitTensorView;

/** A view's live pieces, in order: the view itself, or a split view's parts. */
export function tensorParts(view: TensorView): readonly Float32Array[] {
  return view instanceof Float32Array ? [view] : view.parts;
}

/** Index of the first NaN or ±Inf in `view`, or −1. */
export function firstNonFinite(view: TensorView): number {
  let base = 0;
  for (const part of tensorParts(view)) {
    for (let i = 0; i < part.length; i++) if (!Number.isFinite(part[i])) return base + i;
    base += part.length;
  }
  return -1;
}

/** One view per tensor over `region`, or over gradient slot `slot` when region is 'grads'. */
export function tensorViews(
  layout: Layout,
  shards: readonly ShardStates[],
  region: StateName | 'grads',
  slot = 0,
): Record<string, TensorView> {
  const pieces: Float32Array[][] = layout.tensors.map(() => []);
  for (const seg of layout.segments) {
    const shard = shards[seg.shard];
    const arr = region === 'grads' ? shard.grads[slot] : shard[region];
    pieces[seg.tensor].push(arr.subarray(seg.shardStart, seg.shardStart + seg.length));
  }
  const out: Record<string, TensorView> = Object.create(null);
  layout.tensors.forEach((t, i) => {
    const p = pieces[i];
    out[t.name] = p.length === 1 ? p[0] : p.length === 0 ? new Float32Array(0) : new SplitTensorView(p);
  });
  return Object.freeze(out);
}
