// What a layer's phases compute with: the kernels of one memory (a replica's arena), instantiated once per
// thread that runs them, and where each member's scratch lies in that memory. Layers address their buffers
// by byte offset (Ptr) in the same memory.

import type { Matmul } from '../kernels/matmul.js';
import type { NnOps } from '../kernels/nn-ops.js';
import type { Ptr } from './program.js';

export interface Kernels {
  readonly memory: WebAssembly.Memory;
  /** The GEMM over this memory (kernels/matmul.ts). */
  readonly matmul: Matmul;
  /** The row-wise and elementwise layer kernels over this memory (kernels/nn-ops.ts). */
  readonly ops: NnOps;
  /** Byte offset of member `member`'s scratch: `scratchBytes` bytes, 16-byte aligned, its own for the whole step. */
  scratch(member: number): Ptr;
  readonly scratchBytes: number;
}
