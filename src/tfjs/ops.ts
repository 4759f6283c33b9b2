// The reductions and row gather of src/tfjs/wasm/ops.wat and the tanh and exp of map.wat.mjs over one
// WebAssembly.Memory, addressed by byte offset (for our tfjs kernels: the wasm backend's own memory, tensors
// in place).

import { instantiate } from './wasm-modules.js';

interface MapExports {
  tanh(x: number, out: number, n: number): void;
  exp(x: number, out: number, n: number): void;
}

interface OpsExports {
  sumRows(x: number, rows: number, cols: number, out: number, div: number): void;
  sumCols(x: number, rows: number, cols: number, out: number, div: number): void;
  gatherRows(table: number, rows: number, rowBytes: number, ids: number, count: number, out: number): number;
}

export class Ops {
  readonly #exports: OpsExports;
  readonly #map: MapExports;

  constructor(memory: WebAssembly.Memory) {
    this.#exports = instantiate('ops', memory) as unknown as OpsExports;
    this.#map = instantiate('map', memory) as unknown as MapExports;
  }

  /** out[j] = (Σᵢ x[i, j]) / div over a rows×cols float32 matrix, each column summed in row order. */
  sumRows(x: number, rows: number, cols: number, out: number, div = 1): void {
    this.#exports.sumRows(x, rows, cols, out, div);
  }

  /** out[i] = (Σⱼ x[i, j]) / div over a rows×cols float32 matrix, in an order fixed by cols. */
  sumCols(x: number, rows: number, cols: number, out: number, div = 1): void {
    this.#exports.sumCols(x, rows, cols, out, div);
  }

  /** out[i] = tanh(x[i]) for n float32 values, within 3 ulps; out may be x. */
  tanh(x: number, out: number, n: number): void {
    this.#map.tanh(x, out, n);
  }

  /** out[i] = exp(x[i]) for n float32 values, within 2 ulps where the result is normal; out may be x. */
  exp(x: number, out: number, n: number): void {
    this.#map.exp(x, out, n);
  }

  /**
   * out row i = table row ids[i] (int32 ids, rows of rowBytes). Writes nothing and returns the position of the
   * first id outside [0, rows) if there is one; returns −1 when every row was copied.
   */
  gatherRows(table: number, rows: number, rowBytes: number, ids: number, count: number, out: number): number {
    return this.#exports.gatherRows(table, rows, rowBytes, ids, count, out);
  }
}
