// The one place shardtrain loads TensorFlow.js: core + layers (whose import registers the gradient
// functions) on the wasm backend (single-threaded SIMD per worker), falling back to cpu. tfjs-node is never
// used: its install downloads libtensorflow from outside the npm registry and it breaks in a second thread.

import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import { registerWasmKernels } from './register.js';
import { registerSegmentSum } from './segment-sum.js';

/**
 * tfjs-core and tfjs-layers, loaded by the first initTf() (live bindings: undefined before it). Loading them
 * lazily keeps `import 'shardtrain'` light for programs that only use the optimizer or parallelFor.
 */
export let tf: typeof TfCore;
export let tfl: typeof TfLayers;

export type BackendName = 'wasm' | 'cpu';

let ready: Promise<BackendName> | null = null;

/**
 * Select `preferred` once per thread (wasm falls back to cpu when it cannot start). Returns the backend in
 * use. Later calls return the first call's backend whatever they prefer: a thread runs one backend for its
 * whole life.
 */
export function initTf(preferred: BackendName = 'wasm'): Promise<BackendName> {
  ready ??= (async () => {
    [tf, tfl] = await Promise.all([import('@tensorflow/tfjs-core'), import('@tensorflow/tfjs-layers')]);
    await Promise.all([import('@tensorflow/tfjs-backend-cpu'), import('@tensorflow/tfjs-backend-wasm')]);
    registerSegmentSum(tf);
    registerWasmKernels(tf);
    if (preferred === 'wasm') {
      try {
        if (await startWasmQuietly(tf)) return 'wasm';
      } catch {
        // fall through to cpu
      }
    }
    if (!(await tf.setBackend('cpu'))) throw new Error('neither the wasm nor the cpu tfjs backend could start');
    return 'cpu';
  })();
  return ready;
}

/**
 * setBackend('wasm') with emscripten's abort line kept off stderr. tfjs-backend-wasm's module binds its error
 * printer to console.warn when it is instantiated (here) and prints `Aborted(…)` on a line of its own before it
 * throws a RuntimeError carrying the same words: the error reaches the caller with them, the line is noise
 * that breaks the one-line error contract. The printer it binds drops that line and passes every other on.
 */
export async function startWasmQuietly(core: Pick<typeof TfCore, "setBackend">): Promise<boolean> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('Aborted(')) return;
    warn.apply(console, args);
  };
  try {
    return await core.setBackend('wasm');
  } finally {
    console.warn = warn;
  }
}
