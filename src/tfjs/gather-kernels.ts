// GatherV2 (an embedding lookup, tf.gather) as row copies: for each index, one memory.copy of the slice it
// selects. tfjs's own wasm Gather computes every output element's source through a std::vector of
// coordinates (a heap allocation per element). batchDims > 0, non-int32 indices and 1-byte dtypes go to
// tfjs's kernel, and so does an index out of range (so the error is tfjs's own).

import type * as TF from '@tensorflow/tfjs-core';
import { runOriginal, sizeOf, wasmKernel, type KernelContext } from './kernel-context.js';
import { addressOf } from './wasm-backend.js';

interface GatherInputs {
  readonly x: TF.TensorInfo;
  readonly indices: TF.TensorInfo;
}

interface GatherAttrs {
  readonly axis: number;
  readonly batchDims: number;
}

export function gatherKernels(ctx: KernelContext): TF.KernelConfig[] {
  return [
    wasmKernel<GatherInputs, GatherAttrs>(ctx, 'GatherV2', (args) => {
      const { inputs: { x, indices }, backend, attrs } = args;
      const fits = (x.dtype === 'float32' || x.dtype === 'int32') && indices.dtype === 'int32' && (attrs.batchDims ?? 0) === 0;
      const ops = fits ? ctx.instancesFor(backend)?.ops : undefined;
      if (ops === undefined) return runOriginal(ctx, 'GatherV2', args);
      const axis = ctx.tf.util.parseAxisParam(attrs.axis, x.shape)[0];
      const outer = sizeOf(x.shape.slice(0, axis));
      const rows = x.shape[axis];
      const rowBytes = 4 * sizeOf(x.shape.slice(axis + 1));
      const count = sizeOf(indices.shape);
      const out = backend.makeOutput([...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)], x.dtype);
      const [table, ids, dst] = [addressOf(backend, x), addressOf(backend, indices), addressOf(backend, out)];
      for (let o = 0; o < outer; o++) {
        if (ops.gatherRows(table + o * rows * rowBytes, rows, rowBytes, ids, count, dst + o * count * rowBytes) !== -1) {
          backend.disposeData(out.dataId);
          return runOriginal(ctx, 'GatherV2', args);
        }
      }
      return out;
    }),
  ];
}
