// Add, Sub, Multiply and RealDiv over float32 on our wasm loops (binary.wat.mjs), for the broadcasts a model
// makes: equal shapes, a scalar, a row ([n] against [m, n]: a bias), a column ([m, 1] against [m, n]:
// LayerNorm's moments). Each output is one IEEE float32 operation, so the bits are tfjs's. tfjs's own run
// XNNPACK with a per-call operator set-up; other broadcasts and dtypes go to them.

import type * as TF from '@tensorflow/tfjs-core';
import { runOriginal, sizeOf, wasmKernel, type KernelContext } from './kernel-context.js';
import type { BinaryOp, OperandStrides } from '../kernels/ops.js';
import { addressOf } from './wasm-backend.js';

/** How an operand of this shape is read in an output of `out` shape seen as m×n, or null if it is not one of the four. */
function operand(shape: readonly number[], out: readonly number[]): { kind: 'full' | 'scalar' } | { kind: 'row' | 'col'; inner: number } | null {
  const padded = [...new Array<number>(out.length - shape.length).fill(1), ...shape];
  if (padded.every((d, i) => d === out[i])) return { kind: 'full' };
  if (sizeOf(shape) === 1) return { kind: 'scalar' };
  const first = padded.findIndex((d) => d !== 1);
  if (padded.slice(first).every((d, i) => d === out[first + i])) return { kind: 'row', inner: sizeOf(out.slice(first)) };
  let last = padded.length - 1;
  while (padded[last] === 1) last--;
  if (padded.slice(0, last + 1).every((d, i) => d === out[i])) return { kind: 'col', inner: sizeOf(out.slice(last + 1)) };
  return null;
}

/** The m×n view of the output and each operand's strides, or null when the broadcast is not one of ours. */
export function binaryLayout(aShape: readonly number[], bShape: readonly number[], out: readonly number[]): { m: number; n: number; a: OperandStrides; b: OperandStrides } | null {
  const a = operand(aShape, out);
  const b = operand(bShape, out);
  if (a === null || b === null) return null;
  const inners = [a, b].flatMap((x) => ('inner' in x ? [x.inner] : []));
  if (inners.length === 2 && inners[0] !== inners[1]) return null;
  const size = sizeOf(out);
  const n = inners[0] ?? size;
  const m = n === 0 ? 0 : size / n;
  const strides = (x: NonNullable<ReturnType<typeof operand>>): OperandStrides =>
    x.kind === 'full' ? { row: n, col: 1 } : x.kind === 'scalar' ? { row: 0, col: 0 } : x.kind === 'row' ? { row: 0, col: 1 } : { row: 1, col: 0 };
  return { m, n, a: strides(a), b: strides(b) };
}

const kKernels: ReadonlyArray<readonly [string, BinaryOp]> = [['Add', 'add'], ['Sub', 'sub'], ['Multiply', 'mul'], ['RealDiv', 'div']];

export function binaryKernels(ctx: KernelContext): TF.KernelConfig[] {
  return kKernels.map(([kernelName, op]) =>
    wasmKernel<{ a: TF.TensorInfo; b: TF.TensorInfo }, Record<string, never>>(ctx, kernelName, (args) => {
      const { inputs: { a, b }, backend } = args;
      const ops = a.dtype === 'float32' && b.dtype === 'float32' ? ctx.instancesFor(backend)?.ops : undefined;
      if (ops === undefined) return runOriginal(ctx, kernelName, args);
      const outShape = ctx.tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const layout = binaryLayout(a.shape, b.shape, outShape);
      if (layout === null) return runOriginal(ctx, kernelName, args);
      const out = backend.makeOutput(outShape, 'float32');
      if (layout.m > 0) ops.binary(op, layout.m, layout.n, addressOf(backend, a), layout.a, addressOf(backend, b), layout.b, addressOf(backend, out));
      return out;
    }),
  );
}
