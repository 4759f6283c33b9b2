// The data order, owned by the coordinator and recomputed identically in every replica from two small
// numbers (seed, step): the training examples are visited epoch by epoch, each epoch in a fresh seeded
// permutation; step t takes positions [t·B, (t+1)·B) of that endless stream (a batch may straddle epochs).
// Replica r's micro-batch j (of k accumulation micro-batches) is the fixed slice ((r·k + j)·b, +b) of the
// global batch, b = B / (R·k). Resuming at step t therefore needs only t.
// For token windows (model-module.ts) an example is a window offset: a permutation of every offset is
// "windows at seeded random offsets", without repeats within an epoch.

import { exampleSize, isTokenWindows, type ExampleSet } from '../models/model-module.js';
import { mixSeed, permutation } from '../models/random.js';


export interface DataPosition {
  /** Examples consumed so far (step · global batch). */
  readonly position: number;
  readonly epoch: number;
  /** Index inside the current epoch. */
  readonly offset: number;
}

export class DataOrder {
  readonly #cache = new Map<number, Uint32Array>();

  constructor(
    readonly count: number,
    readonly globalBatch: number,
    readonly seed: number,
  ) {}

  #epoch(e: number): Uint32Array {
    let p = this.#cache.get(e);
    if (!p) {
      if (this.#cache.size > 2) this.#cache.delete(Math.min(...this.#cache.keys()));
      p = permutation(this.count, mixSeed(this.seed, e));
      this.#cache.set(e, p);
    }
    return p;
  }

  position(step: number): DataPosition {
    const position = step * this.globalBatch;
    return { position, epoch: Math.floor(position / this.count), offset: position % this.count };
  }

  /** Example indices of [from, from + length) of step `step`'s global batch. */
  slice(step: number, from: number, length: number, out = new Uint32Array(length)): Uint32Array {
    const start = step * this.globalBatch + from;
    for (let i = 0; i < length; i++) {
      const pos = start + i;
      out[i] = this.#epoch(Math.floor(pos / this.count))[pos % this.count];
    }
    return out;
  }
}

/** Gather examples `indices` of flat array `src` (example size `size`) into `out`. */
export function gatherExamples<T extends Int32Array | Float32Array>(src: T, size: number, indices: ArrayLike<number>, out: T): T {
  for (let i = 0; i < indices.length; i++) out.set(src.subarray(indices[i] * size, (indices[i] + 1) * size), i * size);
  return out;
}

/** A gathered batch: flat input and target arrays and their shapes (batch dimension first). */
export interface GatheredBatch {
  readonly x: Int32Array | Float32Array;
  readonly y: Int32Array | Float32Array;
  readonly xShape: readonly number[];
  readonly yShape: readonly number[];
}

/**
 * Examples `indices` of either kind of example set, as flat arrays. The one place batches are cut: token
 * windows are copied out of the token sequence here (input tokens[s, s+L), target tokens[s+1, s+L+1)).
 */
export function gatherBatch(e: ExampleSet, indices: ArrayLike<number>): GatheredBatch {
  const n = indices.length;
  if (isTokenWindows(e)) {
    const L = e.window;
    const stride = e.stride ?? 1;
    const x = new Int32Array(n * L);
    const y = new Int32Array(n * L);
    for (let i = 0; i < n; i++) {
      const s = indices[i] * stride;
      x.set(e.tokens.subarray(s, s + L), i * L);
      y.set(e.tokens.subarray(s + 1, s + L + 1), i * L);
    }
    return { x, y, xShape: [n, L], yShape: [n, L] };
  }
  const xs = exampleSize(e.xShape);
  const ys = exampleSize(e.yShape);
  const x = gatherExamples(e.x, xs, indices, new (e.x.constructor as Int32ArrayConstructor)(n * xs));
  const y = gatherExamples(e.y, ys, indices, new (e.y.constructor as Int32ArrayConstructor)(n * ys));
  return { x, y, xShape: [n, ...e.xShape], yShape: [n, ...e.yShape] };
}
