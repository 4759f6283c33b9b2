// The data order, owned by the coordinator and recomputed identically in every replica from two small
// numbers (seed, step): the training examples are visited epoch by epoch, each epoch in a fresh seeded
// permutation (computed per index, never tabled: EpochPermutation); step t takes positions [t·B, (t+1)·B) of that endless stream (a batch may straddle epochs).
// Replica r's micro-batch j (of k accumulation micro-batches) is the fixed slice ((r·k + j)·b, +b) of the
// global batch, b = B / (R·k). Resuming at step t therefore needs only t.
// For token windows (model-module.ts) an example is a window offset: a permutation of every offset is
// "windows at seeded random offsets", without repeats within an epoch.

import { exampleSize, isTokenWindows, type ExampleSet } from '../models/model-module.js';
import { mixSeed, mulberry32 } from '../models/random.js';


export interface DataPosition {
  /** Examples consumed so far (step · global batch). */
  readonly position: number;
  readonly epoch: number;
  /** Index inside the current epoch. */
  readonly offset: number;
}

/**
 * A seeded bijection of [0, n) that holds no table: a 4-round Feistel network over the smallest power of
 * two 4ᵏ ≥ n, cycle-walked back into [0, n) (under 4 rounds of the network per index on average). An epoch
 * of a billion-token corpus costs nothing to hold, on any number of threads, and any index is one call.
 * Feistel rounds (L, R) → (R, L ⊕ F(R, key)) are invertible for any F, so the network permutes [0, 4ᵏ).
 */
export class EpochPermutation {
  readonly #n: number;
  readonly #half: number;
  readonly #mask: number;
  readonly #keys: Uint32Array;

  constructor(n: number, seed: number) {
    if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 32) throw new RangeError(`a permutation of ${n} indices is not supported (at most 2^32)`);
    this.#n = n;
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.#half = bits / 2;
    this.#mask = 2 ** this.#half - 1;
    const rand = mulberry32(seed);
    this.#keys = Uint32Array.from({ length: 4 }, () => Math.floor(rand() * 4294967296));
  }

  /** Where index i goes. */
  at(i: number): number {
    let x = i;
    do x = this.#encrypt(x);
    while (x >= this.#n);
    return x;
  }

  #encrypt(x: number): number {
    const h = 2 ** this.#half;
    let l = Math.floor(x / h);
    let r = x % h;
    for (const key of this.#keys) {
      const f = roundFunction(r, key) & this.#mask;
      const next = (l ^ f) >>> 0;
      l = r;
      r = next;
    }
    return l * h + r;
  }
}

/** F of the Feistel rounds: murmur3's 32-bit finalizer of r ⊕ key. */
function roundFunction(r: number, key: number): number {
  let h = (r ^ key) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class DataOrder {
  readonly #epochs = new Map<number, EpochPermutation>();

  constructor(
    readonly count: number,
    readonly globalBatch: number,
    readonly seed: number,
  ) {}

  #epoch(e: number): EpochPermutation {
    let p = this.#epochs.get(e);
    if (!p) {
      if (this.#epochs.size > 2) this.#epochs.delete(Math.min(...this.#epochs.keys()));
      p = new EpochPermutation(this.count, mixSeed(this.seed, e));
      this.#epochs.set(e, p);
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
      out[i] = this.#epoch(Math.floor(pos / this.count)).at(pos % this.count);
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
