// Sum and Mean over any axes whose data layout comes down to one of three float32 loops (size-1 dimensions
// dropped, neighbouring dimensions of the same kind merged): reduce the leading block ([R, K]: column sums,
// the bias and LayerNorm-weight gradients), the trailing block ([K, R]: row sums, LayerNorm's moments), or a
// middle block ([K, R, K'], one column sum per outer index). tfjs's own wasm Sum transposes the input first
// whenever the axes are not innermost, then reduces with a scalar loop; over an empty axis it returns the
// output's memory unwritten. Ours: 0 for Sum, and NaN (0/0) for Mean as TensorFlow's reduce_mean gives
// (tfjs's cpu backend divides each element by the count before summing, and says 0). Other layouts and
// other dtypes go to tfjs's kernels.

import type * as TF from '@tensorflow/tfjs-core';
import { runOriginal, sizeOf, wasmKernel, type KernelArgs, type KernelContext } from './kernel-context.js';
import { addressOf } from './wasm-backend.js';

interface ReduceInputs {
  readonly x: TF.TensorInfo;
}

interface ReduceAttrs {
  readonly axis: number | number[] | null;
  readonly keepDims: boolean;
}

/** Runs of dimensions, alternating kept (false) and reduced (true), with their element counts. */
export function reductionRuns(shape: readonly number[], axes: readonly number[]): Array<{ reduced: boolean; size: number }> {
  const runs: Array<{ reduced: boolean; size: number }> = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const reduced = axes.includes(i);
    const last = runs[runs.length - 1];
    if (last !== undefined && last.reduced === reduced) last.size *= d;
    else runs.push({ reduced, size: d });
  });
  return runs;
}

function runReduce(ctx: KernelContext, kernelName: 'Sum' | 'Mean', args: KernelArgs<ReduceInputs, ReduceAttrs>): TF.TensorInfo {
  const { inputs: { x }, backend, attrs } = args;
  const ops = x.dtype === 'float32' ? ctx.instancesFor(backend)?.ops : undefined;
  if (ops === undefined) return runOriginal(ctx, kernelName, args);
  const axes = ctx.tf.util.parseAxisParam(attrs.axis ?? x.shape.map((_, i) => i), x.shape);
  const runs = reductionRuns(x.shape, axes);
  const pattern = runs.map((r) => (r.reduced ? 'R' : 'K')).join('');
  if (!['', 'R', 'K', 'RK', 'KR', 'KRK'].includes(pattern)) return runOriginal(ctx, kernelName, args);
  const outShape = attrs.keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  const out = backend.makeOutput(outShape, 'float32');
  const reducedCount = axes.reduce((p, a) => p * x.shape[a], 1);
  const div = kernelName === 'Mean' ? reducedCount : 1;
  const [src, dst] = [addressOf(backend, x), addressOf(backend, out)];
  const size = (i: number): number => runs[i].size;
  if (pattern === '' || pattern === 'K') ops.sumRows(src, 1, sizeOf(x.shape), dst, div);
  else if (pattern === 'R') ops.sumCols(src, 1, size(0), dst, div);
  else if (pattern === 'RK') ops.sumRows(src, size(0), size(1), dst, div);
  else if (pattern === 'KR') ops.sumCols(src, size(0), size(1), dst, div);
  else for (let o = 0; o < size(0); o++) ops.sumRows(src + 4 * o * size(1) * size(2), size(1), size(2), dst + 4 * o * size(2), div);
  return out;
}

export function reduceKernels(ctx: KernelContext): TF.KernelConfig[] {
  return (['Sum', 'Mean'] as const).map((name) => wasmKernel<ReduceInputs, ReduceAttrs>(ctx, name, (args) => runReduce(ctx, name, args)));
}
