// What a layer's phases compute with: the kernels of one memory (a replica's arena), instantiated once per
// thread that runs them, and where each member's scratch lies in that memory. Layers address their buffers
// by byte offset (Ptr) in the same memory.

import { AttentionOps } from '../kernels/attention-ops.js';
import { Matmul } from '../kernels/matmul.js';
import { NnOps } from '../kernels/nn-ops.js';
import type { SimdFlavor } from '../kernels/wasm-modules.js';
import type { Ptr } from './program.js';

export interface Kernels {
  readonly memory: WebAssembly.Memory;
  /** The GEMM over this memory (kernels/matmul.ts). */
  readonly matmul: Matmul;
  /** The row-wise and elementwise layer kernels over this memory (kernels/nn-ops.ts). */
  readonly ops: NnOps;
  /** Causal attention's softmax rows and softmax backward over this memory (kernels/attention-ops.ts). */
  readonly attention: AttentionOps;
  /** Byte offset of member `member`'s scratch: `scratchBytes` bytes, 16-byte aligned, its own for the whole step. */
  scratch(member: number): Ptr;
  readonly scratchBytes: number;
}

/** The kernels over `memory`, member m's scratch at scratch(m) (`scratchBytes` bytes each). */
export function createKernels(memory: WebAssembly.Memory, flavor: SimdFlavor, scratch: (member: number) => Ptr, scratchBytes: number): Kernels {
  return { memory, matmul: new Matmul(memory, flavor), ops: new NnOps(memory), attention: new AttentionOps(memory), scratch, scratchBytes };
}
