// Copies between slots of the arena that no kernel needs to be fast for: a few rows at the head of a sample
// pass. Plain typed-array copies over the memory's buffer, split by rows.

import type { Kernels } from './kernels.js';
import { memberSlice, type Program, type Ptr } from './program.js';

/** dst[r, :cols] = src[r·srcStride, +cols) for r < rows (dst rows packed). */
export function copyRows(p: Program, k: Kernels, dst: Ptr, src: Ptr, rows: number, cols: number, srcStride: number): void {
  p.push('copy rows', (member, members) => {
    const f32 = new Float32Array(k.memory.buffer);
    const [r0, r1] = memberSlice(rows, member, members);
    for (let r = r0; r < r1; r++) f32.copyWithin(dst / 4 + r * cols, src / 4 + r * srcStride, src / 4 + r * srcStride + cols);
  });
}
