// Elementwise kernels: Tanh and Exp (tfjs's wasm kernels call the C library's tanhf and expf once per element;
// ours are four lanes at a time, within 3 and 2 ulps, see map.wat.mjs), and Identity and Cast to the same dtype, which tfjs's wasm
// backend answers with a fresh copy (malloc + copy of the whole tensor, 59 times in a char-lm-large step):
// ours hand out the input's buffer with one more reference, as tfjs's cpu backend does for Identity and the
// wasm backend for Reshape (no kernel writes into its inputs, so sharing is safe).

import type * as TF from '@tensorflow/tfjs-core';
import { runOriginal, sizeOf, wasmKernel, type KernelArgs, type KernelContext } from './kernel-context.js';
import { addressOf, type WasmBackend } from './wasm-backend.js';

type X = { x: TF.TensorInfo };

function share(backend: WasmBackend, x: TF.TensorInfo): TF.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** A float32 map on our wasm ops (other dtypes: tfjs's kernel). */
function mapKernel(ctx: KernelContext, kernelName: string, op: 'tanh' | 'exp'): TF.KernelConfig {
  return wasmKernel<X, Record<string, never>>(ctx, kernelName, (args) => {
    const { inputs: { x }, backend } = args;
    const ops = x.dtype === 'float32' ? ctx.instancesFor(backend)?.ops : undefined;
    if (ops === undefined) return runOriginal(ctx, kernelName, args);
    const out = backend.makeOutput([...x.shape], 'float32');
    ops[op](addressOf(backend, x), addressOf(backend, out), sizeOf(x.shape));
    return out;
  });
}

export function elementwiseKernels(ctx: KernelContext): TF.KernelConfig[] {
  return [
    mapKernel(ctx, 'Tanh', 'tanh'),
    mapKernel(ctx, 'Exp', 'exp'),
    wasmKernel<X, Record<string, never>>(ctx, 'Identity', (args) => (args.inputs.x.dtype === 'string' ? runOriginal(ctx, 'Identity', args) : share(args.backend, args.inputs.x))),
    wasmKernel<X, { dtype: TF.DataType }>(ctx, 'Cast', (args: KernelArgs<X, { dtype: TF.DataType }>) =>
      args.inputs.x.dtype === args.attrs.dtype && args.inputs.x.dtype !== 'string' ? share(args.backend, args.inputs.x) : runOriginal(ctx, 'Cast', args)),
  ];
}
