// The engine's layer kernels (wasm/nn.wat.mjs, with tanh from wasm/map.wat.mjs and the row gather from
// wasm/ops.wat) over one memory: one NnOps per memory per thread. Addresses are byte offsets, sizes are
// elements; each method does the rows, columns or elements it is given, so a member of a team calls it for
// its share (src/nn/ says which). Outputs come first, as in the layers' signatures. The methods check
// nothing but the token ids and targets they index by (the layers check shapes once, when they build the
// program): an id out of range writes nothing and throws a RangeError that names it.

import { instantiate } from './wasm-modules.js';

interface NnExports {
  gelu(x: number, out: number, count: number): void;
  geluBackward(x: number, d: number, out: number, count: number): void;
  tanhBackward(y: number, d: number, out: number, count: number): void;
  add(a: number, b: number, out: number, count: number): void;
  layerNormForward(out: number, mean: number, rstd: number, inp: number, gamma: number, beta: number, r0: number, r1: number, C: number, eps: number): void;
  layerNormBackward(dinp: number, dout: number, inp: number, gamma: number, mean: number, rstd: number, r0: number, r1: number, C: number, accumulate: number): void;
  layerNormParamGrads(dgamma: number, dbeta: number, dout: number, inp: number, mean: number, rstd: number, rows: number, C: number, c0: number, c1: number): void;
  columnSums(out: number, x: number, rows: number, ld: number, c0: number, c1: number, accumulate: number): void;
  encoderForward(out: number, tokens: number, wte: number, wpe: number, r0: number, r1: number, T: number, C: number, V: number): number;
  scatterColumns(dtable: number, dout: number, ids: number, count: number, C: number, c0: number, c1: number, V: number, zero: number): number;
  crossEntropy(losses: number, logits: number, targets: number, r0: number, r1: number, V: number, scale: number, backward: number): number;
}

interface MapExports {
  tanh(x: number, out: number, count: number): void;
}

interface OpsExports {
  gatherRows(table: number, rows: number, rowBytes: number, ids: number, count: number, out: number): number;
}

export class NnOps {
  readonly memory: WebAssembly.Memory;
  readonly #nn: NnExports;
  readonly #map: MapExports;
  readonly #ops: OpsExports;

  constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
    this.#nn = instantiate('nn', memory) as unknown as NnExports;
    this.#map = instantiate('map', memory) as unknown as MapExports;
    this.#ops = instantiate('ops', memory) as unknown as OpsExports;
  }

  /** out = GELU(inp) (tanh form), n elements; out may be inp. Error bound: wasm/nn.wat.mjs geluForward. */
  gelu(out: number, inp: number, n: number): void {
    this.#nn.gelu(inp, out, n);
  }

  /** dinp = dout·GELU′(inp); dinp may be dout or inp. */
  geluBackward(dinp: number, inp: number, dout: number, n: number): void {
    this.#nn.geluBackward(inp, dout, dinp, n);
  }

  /** out = tanh(inp) within 3 ulps (wasm/map.wat.mjs); out may be inp. */
  tanh(out: number, inp: number, n: number): void {
    this.#map.tanh(inp, out, n);
  }

  /** dinp = dout·(1 − out²) from tanh's saved output; dinp may be dout or out. */
  tanhBackward(dinp: number, out: number, dout: number, n: number): void {
    this.#nn.tanhBackward(out, dout, dinp, n);
  }

  /** out = a + b, n elements; out may be a or b. */
  add(out: number, a: number, b: number, n: number): void {
    this.#nn.add(a, b, out, n);
  }

  /** Rows [r0, r1) of LayerNorm over rows C wide: out, and each row's mean and rstd. */
  layerNormForward(out: number, mean: number, rstd: number, inp: number, gamma: number, beta: number, r0: number, r1: number, C: number, eps: number): void {
    this.#nn.layerNormForward(out, mean, rstd, inp, gamma, beta, r0, r1, C, eps);
  }

  /** Rows [r0, r1) of LayerNorm's input gradient, written or added to dinp. */
  layerNormBackward(dinp: number, dout: number, inp: number, gamma: number, mean: number, rstd: number, r0: number, r1: number, C: number, accumulate: boolean): void {
    this.#nn.layerNormBackward(dinp, dout, inp, gamma, mean, rstd, r0, r1, C, accumulate ? 1 : 0);
  }

  /** Columns [c0, c1) of dγ and dβ, summed over all `rows` rows in order (written). */
  layerNormParamGrads(dgamma: number, dbeta: number, dout: number, inp: number, mean: number, rstd: number, rows: number, C: number, c0: number, c1: number): void {
    this.#nn.layerNormParamGrads(dgamma, dbeta, dout, inp, mean, rstd, rows, C, c0, c1);
  }

  /** out[j] (+)= Σ_r x[r·ld + j] for j in [c0, c1), rows in order. */
  columnSums(out: number, x: number, rows: number, ld: number, c0: number, c1: number, accumulate: boolean): void {
    this.#nn.columnSums(out, x, rows, ld, c0, c1, accumulate ? 1 : 0);
  }

  /** Rows [r0, r1): out[r] = wte[tokens[r]] + wpe[r mod T], rows C wide, ids in [0, V) (`limit` names V in the error). */
  encoderForward(out: number, tokens: number, wte: number, wpe: number, r0: number, r1: number, T: number, C: number, V: number, limit = 'V'): void {
    this.#idCheck('token id', tokens, this.#nn.encoderForward(out, tokens, wte, wpe, r0, r1, T, C, V), V, limit);
  }

  /** Rows [r0, r1): out[r] = table[ids[r]], rows E wide, ids in [0, V). */
  gatherRows(out: number, ids: number, table: number, r0: number, r1: number, E: number, V: number, limit = 'V'): void {
    const bad = this.#ops.gatherRows(table, V, 4 * E, ids + 4 * r0, r1 - r0, out + 4 * r0 * E);
    this.#idCheck('id', ids, bad < 0 ? bad : r0 + bad, V, limit);
  }

  /** Columns [c0, c1) of dtable[ids[r]] += dout[r] for r < count in order (rows C wide); `zero`: of all V rows, zeroed first. */
  scatterColumns(dtable: number, dout: number, ids: number, count: number, C: number, c0: number, c1: number, V: number, zero: boolean): void {
    this.#idCheck('id', ids, this.#nn.scatterColumns(dtable, dout, ids, count, C, c0, c1, V, zero ? 1 : 0), V, 'V');
  }

  /**
   * Rows [r0, r1) of softmax cross-entropy over rows V wide: losses[r] = −log softmax(logits[r])[targets[r]];
   * with `backward`, logits[r] is overwritten by (softmax − onehot)·scale.
   */
  crossEntropy(losses: number, logits: number, targets: number, r0: number, r1: number, V: number, scale: number, backward: boolean): void {
    this.#idCheck('target', targets, this.#nn.crossEntropy(losses, logits, targets, r0, r1, V, scale, backward ? 1 : 0), V, 'V');
  }

  /** The kernels return −1, or the position of the first id outside [0, limit) (having written nothing). */
  #idCheck(what: string, ids: number, position: number, limit: number, limitName: string): void {
    if (position < 0) return;
    const id = new Int32Array(this.memory.buffer, ids + 4 * position, 1)[0];
    throw new RangeError(`${what} ${id} at position ${position} is outside [0, ${limit})${limitName === 'V' ? '' : `, ${limitName}`}`);
  }
}
