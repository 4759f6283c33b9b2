// The checks every layer makes once, when it pushes its phases (never inside a step): sizes are positive
// integers, and every buffer is 4-byte aligned and lies inside the memory the kernels are bound to. A bad
// argument is one line naming the layer, the argument and its value.

import type { Kernels } from './kernels.js';
import type { Ptr } from './program.js';

/** Each size must be a positive integer (`linearForward: cin must be a positive integer, got 0`). */
export function checkSizes(layer: string, sizes: Readonly<Record<string, number>>): void {
  for (const [name, value] of Object.entries(sizes)) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${layer}: ${name} must be a positive integer, got ${value}`);
  }
}

/** Each buffer [ptr, floats] (ptr null: absent) must be 4-byte aligned and end inside k.memory. */
export function checkBuffers(layer: string, k: Kernels, buffers: Readonly<Record<string, readonly [Ptr | null, number]>>): void {
  const size = k.memory.buffer.byteLength;
  for (const [name, [ptr, floats]] of Object.entries(buffers)) {
    if (ptr === null) continue;
    if (!Number.isInteger(ptr) || ptr < 0 || ptr % 4 !== 0) throw new RangeError(`${layer}: ${name} must be a 4-byte aligned byte offset, got ${ptr}`);
    if (ptr + 4 * floats > size) throw new RangeError(`${layer}: ${name} (${floats} floats at byte ${ptr}) ends past the memory (${size} bytes)`);
  }
}

/** A finite number (`crossEntropyForwardBackward: scale must be finite, got NaN`). */
export function checkFinite(layer: string, name: string, value: number): void {
  if (!Number.isFinite(value)) throw new RangeError(`${layer}: ${name} must be finite, got ${value}`);
}

/**
 * Elements, or columns that are written by a sum over rows, are cut on whole 64-byte cache lines (16 floats)
 * so that no two members write one line.
 */
export const kLineFloats = 16;
