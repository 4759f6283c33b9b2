// Gradients of Sum and Mean that broadcast dy without building a tensor of ones in JavaScript. tfjs's (4.22,
// registered when tfjs-layers loads) compute dy·ones(x.shape) with the ones filled element by element in a JS
// loop and copied into the wasm heap: 6 % of a char-lm replica step in a CPU profile. These are the same
// operations, in the same order, on the same values (mul by exactly 1, then for Mean the same division), so
// the bits do not change; the ones come from the Fill kernel instead. Gradients are global in tfjs (every
// backend uses them), and these hold on any backend.

import type * as TF from '@tensorflow/tfjs-core';
import type { Tf } from './kernel-context.js';

interface ReduceAttrs {
  readonly axis: number | number[];
}

/** dy reshaped to x's rank (reduced axes as 1), times ones of x's shape: dy broadcast over the reduced axes. */
function broadcastDy(tf: Tf, dy: TF.Tensor, x: TF.Tensor, axes: readonly number[]): TF.Tensor {
  const expandedShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, expandedShape), tf.fill(x.shape, 1, 'float32'));
}

export function gradientConfigs(tf: Tf): TF.GradConfig[] {
  return [
    {
      kernelName: 'Sum',
      inputsToSave: ['x'],
      gradFunc: (dy, saved, attrs) => {
        const x = saved[0];
        const axes = tf.util.parseAxisParam((attrs as unknown as ReduceAttrs).axis, x.shape);
        const derX = broadcastDy(tf, dy as TF.Tensor, x, axes);
        return { x: () => derX };
      },
    },
    {
      kernelName: 'Mean',
      inputsToSave: ['x'],
      gradFunc: (dy, saved, attrs) => {
        const x = saved[0];
        const axes = tf.util.parseAxisParam((attrs as unknown as ReduceAttrs).axis, x.shape);
        const reduceSize = axes.reduce((p, a) => p * x.shape[a], 1);
        return { x: () => tf.div(broadcastDy(tf, dy as TF.Tensor, x, axes), reduceSize) };
      },
    },
  ];
}
