// What every kernel of ours gets from the registration: our wasm instances over a backend's memory, and
// tfjs's own kernels to fall back to for what ours do not handle.

import type * as TF from '@tensorflow/tfjs-core';
import type { Gemm } from '../kernels/gemm.js';
import type { Ops } from '../kernels/ops.js';
import type { WasmBackend } from './wasm-backend.js';

export type Tf = typeof TF;

export interface Instances {
  readonly gemm: Gemm;
  readonly ops: Ops;
}

export interface KernelContext {
  readonly tf: Tf;
  /** Ours over this backend's memory, or null when it cannot be reached (then tfjs's kernels run). */
  instancesFor(backend: WasmBackend): Instances | null;
  /** tfjs's own kernel for this name on the wasm backend (as registered before ours). */
  original(kernelName: string): TF.KernelConfig;
}

/** The arguments tfjs passes a kernel function, typed for our kernels. */
export interface KernelArgs<I, A> {
  readonly inputs: I;
  readonly backend: WasmBackend;
  readonly attrs: A;
}

/** Calls of our registered kernels by name on this thread, and how many of them went on to tfjs's own. */
export interface KernelCalls {
  readonly calls: number;
  readonly toTfjs: number;
}
const callCounts = new Map<string, { calls: number; toTfjs: number }>();
const countOf = (kernelName: string) => {
  let c = callCounts.get(kernelName);
  if (c === undefined) callCounts.set(kernelName, (c = { calls: 0, toTfjs: 0 }));
  return c;
};

/** A copy of the counts: tests prove with it which kernels ran, not only that the numbers match. */
export function kernelCalls(): ReadonlyMap<string, KernelCalls> {
  return new Map([...callCounts].map(([name, c]) => [name, { ...c }]));
}

/** Run tfjs's own kernel with the arguments ours received. */
export function runOriginal<I, A>(ctx: KernelContext, kernelName: string, args: KernelArgs<I, A>): TF.TensorInfo {
  countOf(kernelName).toTfjs++;
  return ctx.original(kernelName).kernelFunc({
    inputs: args.inputs as unknown as TF.NamedTensorInfoMap,
    backend: args.backend as unknown as TF.KernelBackend,
    attrs: args.attrs as unknown as TF.NamedAttrMap,
  }) as TF.TensorInfo;
}

/**
 * A kernel config for the wasm backend around a typed kernel function. Its setupFunc runs tfjs's: tfjs calls
 * setupFunc (which binds a kernel to the backend's C functions) only for the kernels registered when the
 * backend starts, and once ours are, theirs would never be bound for the fallbacks to call.
 */
export function wasmKernel<I, A>(ctx: KernelContext, kernelName: string, run: (args: KernelArgs<I, A>) => TF.TensorInfo): TF.KernelConfig {
  return {
    kernelName,
    backendName: 'wasm',
    setupFunc: (backend) => ctx.original(kernelName).setupFunc?.(backend),
    kernelFunc: ({ inputs, backend, attrs }) => {
      countOf(kernelName).calls++;
      return run({ inputs: inputs as unknown as I, backend: backend as unknown as WasmBackend, attrs: attrs as unknown as A });
    },
  };
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);
