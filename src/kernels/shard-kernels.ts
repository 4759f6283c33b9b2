// The kernel registry: every thread (and the inline path) loads kernels by name, so the coordinator and
// the workers are guaranteed to run the same per-element arithmetic.

import { jsKernels, type ShardKernels } from './adamw-js.js';
import { wasmKernelAvailable, wasmKernelError, wasmKernels } from './adamw-wasm.js';

export type { ShardKernels } from './adamw-js.js';

/** `js`: the plain reference loop; `wasm`: the WebAssembly SIMD kernel (src/kernels/wasm/adamw.wat). */
export type KernelName = 'js' | 'wasm';
/** What options.kernel takes: a kernel, or `auto` (wasm where the runtime validates SIMD, else js). */
export const kernelChoices = Object.freeze(['auto', 'js', 'wasm'] as const);
export type KernelChoice = (typeof kernelChoices)[number];

export function loadKernels(name: KernelName): ShardKernels {
  switch (name) {
    case 'js':
      return jsKernels;
    case 'wasm':
      if (!wasmKernelAvailable()) {
        throw new Error(`kernel 'wasm' is unavailable in this runtime (${wasmKernelError()?.message ?? 'unknown reason'}); use kernel 'js' or 'auto'`);
      }
      return wasmKernels;
  }
}

/** The kernel `'auto'` picks: WebAssembly SIMD when this runtime validates and runs it, else plain JS. */
export function defaultKernel(): KernelName {
  return wasmKernelAvailable() ? 'wasm' : 'js';
}
