// The reductions and row gather of src/kernels/wasm/ops.wat, the tanh and exp of map.wat.mjs and the binary
// operations of binary.wat.mjs over one
// WebAssembly.Memory, addressed by byte offset (for our tfjs kernels: the wasm backend's own memory, tensors
// in place).

import { instantiate } from './wasm-modules.js';

interface BinaryExports {
  binary(op: number, m: number, n: number, a: number, aRow: number, aCol: number, b: number, bRow: number, bCol: number, out: number): void;
}

/** Elementwise binary operations of binary.wat.mjs, in its numbering. */
export const kBinaryOps = Object.freeze({ add: 0, sub: 1, mul: 2, div: 3 });
export type BinaryOp = keyof typeof kBinaryOps;

/** Where an operand's element (i, j) of an m×n output is: 4·(i·row + j·col) bytes from its base. */
export interface OperandStrides {
  readonly row: number;
  readonly col: number;
}

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
  readonly #binary: BinaryExports;

  constructor(memory: WebAssembly.Memory) {
    this.#exports = instantiate('ops', memory) as unknown as OpsExports;
    this.#map = instantiate('map', memory) as unknown as MapExports;
    this.#binary = instantiate('binary', memory) as unknown as BinaryExports;
  }

  /** out[i, j] = a(i, j) op b(i, j) over an m×n float32 output, each operand read through its strides. */
  binary(op: BinaryOp, m: number, n: number, a: number, as: OperandStrides, b: number, bs: OperandStrides, out: number): void {
    this.#binary.binary(kBinaryOps[op], m, n, a, as.row, as.col, b, bs.row, bs.col, out);
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
