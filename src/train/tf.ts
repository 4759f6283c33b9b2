// The one place shardtrain loads TensorFlow.js: core + layers (whose import registers the gradient
// functions) on the wasm backend (single-threaded SIMD per worker), falling back to cpu. tfjs-node is never
// used: its install downloads libtensorflow from outside the npm registry and it breaks in a second thread.

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradientKernels } from './wasm-kernels.js';

export { tf, tfl };
export type BackendName = 'wasm' | 'cpu';

let ready: Promise<BackendName> | null = null;

/**
 * Select `preferred` once per thread (wasm falls back to cpu when it cannot start). Returns the backend in
 * use. Calling again with another preference is an error: a thread runs one backend for its whole life.
 */
export function initTf(preferred: BackendName = 'wasm'): Promise<BackendName> {
  ready ??= (async () => {
    registerWasmGradientKernels();
    if (preferred === 'wasm') {
      try {
        if (await tf.setBackend('wasm')) return 'wasm';
      } catch {
        // fall through to cpu
      }
    }
    if (!(await tf.setBackend('cpu'))) throw new Error('neither the wasm nor the cpu tfjs backend could start');
    return 'cpu';
  })();
  return ready;
}
