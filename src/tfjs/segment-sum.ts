// Kernels the tfjs wasm backend lacks for backprop. The gradient of gather (an embedding lookup) is
// UnsortedSegmentSum, which tfjs-backend-wasm 4.22 does not register ("Kernel 'UnsortedSegmentSum' not
// registered for backend 'wasm'"). This is a plain JS implementation over the wasm heap: same result as the
// cpu backend's, summing rows in index order (so it is deterministic).

import type * as TF from '@tensorflow/tfjs-core';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: TF.DataType): TF.TensorInfo;
  typedArrayFromHeap(info: TF.TensorInfo): TF.TypedArray;
}

/** out[ids[i], :] += x[i, :] for every i with 0 <= ids[i] < numSegments; out has numSegments rows. */
export function unsortedSegmentSum(x: ArrayLike<number>, ids: ArrayLike<number>, inner: number, numSegments: number, out: Float32Array | Int32Array): void {
  out.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const from = i * inner;
    const to = s * inner;
    for (let j = 0; j < inner; j++) out[to + j] += x[from + j];
  }
}

const kernel: TF.KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmBackendLike;
    const { x, segmentIds } = inputs as { x: TF.TensorInfo; segmentIds: TF.TensorInfo };
    const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
    const rest = x.shape.slice(segmentIds.shape.length);
    const inner = rest.reduce((a, d) => a * d, 1);
    const out = b.makeOutput([numSegments, ...rest], x.dtype);
    const xs = b.typedArrayFromHeap(x);
    const ids = b.typedArrayFromHeap(segmentIds);
    unsortedSegmentSum(xs, ids, inner, numSegments, b.typedArrayFromHeap(out) as Float32Array | Int32Array);
    return out;
  },
};

/** Register the missing kernel into `tf`'s registry (a no-op if it has one: tfjs may ship it one day). */
export function registerSegmentSum(tf: Pick<typeof TF, 'getKernel' | 'registerKernel'>): void {
  if (tf.getKernel(kernel.kernelName, 'wasm') === undefined) tf.registerKernel(kernel);
}
