// The kernel registry: every thread (and the inline path) loads kernels by name, so the coordinator and
// the workers are guaranteed to run the same per-element arithmetic.

import { jsKernels, type ShardKernels } from './kernels-js.js';
import type { KernelName } from '../parallel/worker-protocol.js';

export type { ShardKernels } from './kernels-js.js';

export const kernelNames: readonly KernelName[] = Object.freeze(['js', 'wasm']);

export async function loadKernels(name: KernelName): Promise<ShardKernels> {
  switch (name) {
    case 'js':
      return jsKernels;
    case 'wasm':
      throw new Error('the wasm kernel is not built yet');
  }
}

/** The kernel `'auto'` picks: the fastest one this runtime supports. */
export async function defaultKernel(): Promise<KernelName> {
  return 'js';
}
