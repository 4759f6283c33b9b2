// Elementwise kernels: Tanh (tfjs's wasm Tanh calls the C library's tanhf once per element; ours is four
// lanes at a time, within 3 ulps, see ops.wat).

import type * as TF from '@tensorflow/tfjs-core';
import { runOriginal, sizeOf, wasmKernel, type KernelContext } from './kernel-context.js';
import { addressOf } from './wasm-backend.js';

export function elementwiseKernels(ctx: KernelContext): TF.KernelConfig[] {
  return [
    wasmKernel<{ x: TF.TensorInfo }, Record<string, never>>(ctx, 'Tanh', (args) => {
      const { inputs: { x }, backend } = args;
      const ops = x.dtype === 'float32' ? ctx.instancesFor(backend)?.ops : undefined;
      if (ops === undefined) return runOriginal(ctx, 'Tanh', args);
      const out = backend.makeOutput([...x.shape], 'float32');
      ops.tanh(addressOf(backend, x), addressOf(backend, out), sizeOf(x.shape));
      return out;
    }),
  ];
}
