// The kernel registry: every thread (and the inline path) loads kernels by name, so the coordinator and
// the workers are guaranteed to run the same per-element arithmetic.

import { jsKernels, type ShardKernels } from './kernels-js.js';
import { wasmKernelAvailable, wasmKernelError, wasmKernels } from './kernels-wasm.js';
import type { KernelName } from '../parallel/worker-protocol.js';

export type { ShardKernels } from './kernels-js.js';

export const kernelNames: readonly KernelName[] = Object.freeze(['js', 'wasm']);

export async function loadKernels(name: KernelName): Promise<ShardKernels> {
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
export async function defaultKernel(): Promise<KernelName> {
  return wasmKernelAvailable() ? 'wasm' : 'js';
}
