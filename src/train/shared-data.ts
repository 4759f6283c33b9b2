// The data set in shared memory, once for every thread: the coordinator loads it, and the threads get its
// arrays by handle (structured clone passes a SharedArrayBuffer without copying it). An array already over
// a SharedArrayBuffer (a prepared directory's token ids, read straight into one) is kept as it is: a 1 GB
// corpus stays 1 GB whatever the thread count. Any other is copied into shared memory once.

import { isTokenWindows, type DataSet, type ExampleSet } from '../models/model-module.js';

type Shareable = Int32Array | Float32Array | Uint16Array;

/** `a` itself when it views a SharedArrayBuffer, else a copy of it in a new one. */
export function shared<T extends Shareable>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const Ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const out = new Ctor(new SharedArrayBuffer(a.byteLength));
  out.set(a);
  return out;
}

export function sharedExamples(e: ExampleSet): ExampleSet {
  if (isTokenWindows(e)) return { ...e, tokens: shared(e.tokens) };
  return { ...e, x: shared(e.x), y: shared(e.y) };
}

/** Both sides of `data` in shared memory; the meta as it is (it is structured-cloned to each thread: keep it small). */
export function sharedDataSet(data: DataSet): DataSet {
  return { ...data, train: sharedExamples(data.train), eval: sharedExamples(data.eval) };
}

/** Bytes the examples hold. */
export function exampleBytes(e: ExampleSet): number {
  return isTokenWindows(e) ? e.tokens.byteLength : e.x.byteLength + e.y.byteLength;
}
