// One shared WebAssembly.Memory per shard holds every state of that shard, region after region:
//   params | m | v | v_max (AMSGrad only) | grad slot 0 | … | grad slot R−1
// Each region is `capacity` floats (a multiple of 16, so every region starts on a 64-byte boundary).
// JS reads the memory through Float32Array views of `memory.buffer` (a SharedArrayBuffer); a wasm kernel
// instantiated with the same memory addresses the same bytes through the byte offsets below.

import type { Layout, ShardRange } from './layout.js';

const kPageBytes = 65536;

/** The per-parameter states a shard keeps besides its gradient slots (v_max only with AMSGrad). */
export type StateName = 'params' | 'm' | 'v' | 'vmax';

/** The states kept (and checkpointed): params, m, v, and v_max with AMSGrad. */
export function stateNamesFor(amsgrad: boolean): readonly StateName[] {
  return amsgrad ? ['params', 'm', 'v', 'vmax'] : ['params', 'm', 'v'];
}

export interface ShardRegions {
  /** Byte offsets of each region inside the shard's memory. */
  readonly params: number;
  readonly m: number;
  readonly v: number;
  /** -1 without AMSGrad. */
  readonly vmax: number;
  readonly grads: readonly number[];
  readonly totalBytes: number;
}

export interface ShardStates {
  readonly range: ShardRange;
  readonly memory: WebAssembly.Memory;
  readonly regions: ShardRegions;
  readonly params: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Empty without AMSGrad. */
  readonly vmax: Float32Array;
  readonly grads: readonly Float32Array[];
}

export function shardRegions(capacity: number, gradSlots: number, amsgrad: boolean): ShardRegions {
  const bytes = capacity * 4;
  let at = 0;
  const take = (): number => {
    const offset = at;
    at += bytes;
    return offset;
  };
  const params = take();
  const m = take();
  const v = take();
  const vmax = amsgrad ? take() : -1;
  const grads = Array.from({ length: gradSlots }, take);
  return { params, m, v, vmax, grads, totalBytes: at };
}

/** Views over a shard's memory; used on the thread that allocated it and on every worker. */
export function viewShard(range: ShardRange, memory: WebAssembly.Memory, gradSlots: number, amsgrad: boolean): ShardStates {
  const regions = shardRegions(range.capacity, gradSlots, amsgrad);
  const buf = memory.buffer;
  const view = (offset: number): Float32Array => (offset < 0 ? new Float32Array(0) : new Float32Array(buf, offset, range.capacity));
  return {
    range,
    memory,
    regions,
    params: view(regions.params),
    m: view(regions.m),
    v: view(regions.v),
    vmax: view(regions.vmax),
    grads: regions.grads.map(view),
  };
}

/** Allocate every shard's memory (zero-filled, as Adam's m, v and v_max must start). */
export function allocateShards(layout: Layout, gradSlots: number, amsgrad: boolean): ShardStates[] {
  return layout.shards.map((range) => {
    const { totalBytes } = shardRegions(range.capacity, gradSlots, amsgrad);
    const pages = Math.ceil(totalBytes / kPageBytes);
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    } catch (err) {
      throw new RangeError(
        `could not allocate shard ${range.index} (${(totalBytes / 2 ** 20).toFixed(1)} MiB of shared memory for ${range.size} parameters): ${(err as Error).message}`,
      );
    }
    return viewShard(range, memory, gradSlots, amsgrad);
  });
}
