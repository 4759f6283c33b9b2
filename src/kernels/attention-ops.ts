// The row kernels of causal attention (src/kernels/wasm/attention.wat.mjs) over one memory, addressed by
// byte offset: one instance per memory per thread. A block of `rows` rows, `ld` floats apart, holds causal
// positions first … first + rows − 1; row r has n = first + r + 1 live entries (j ≤ its position) and
// `width` stored ones, the entries past n written as zeros. Each row's bits depend on its live values alone.
// The formulas (and why p goes through the lse) are in the generator's header.

import { instantiate } from './wasm-modules.js';

interface AttentionExports {
  softmaxRows(s: number, ld: number, rows: number, first: number, width: number, scale: number, lse: number, storeLse: number): void;
  probsRows(s: number, ld: number, rows: number, first: number, width: number, scale: number, lse: number): void;
  softmaxBackwardRows(p: number, ldP: number, ds: number, ldD: number, rows: number, first: number, width: number, scale: number): void;
}

export class AttentionOps {
  readonly #x: AttentionExports;

  constructor(memory: WebAssembly.Memory) {
    this.#x = instantiate('attention', memory) as unknown as AttentionExports;
  }

  /**
   * Scores in place → causal softmax(scale·s) per row, zeros past the live entries; the row's
   * lse = log Σ exp(scale·s) (float32) at `lse` + 4·r unless `lse` is null.
   */
  softmaxRows(s: number, ld: number, rows: number, first: number, width: number, scale: number, lse: number | null): void {
    checkBlock('softmaxRows', ld, rows, first, width);
    this.#x.softmaxRows(s, ld, rows, first, width, scale, lse ?? 0, lse === null ? 0 : 1);
  }

  /** Raw scores in place → the probabilities softmaxRows gave, bit for bit, from its lse at `lse` + 4·r. */
  probsRows(s: number, ld: number, rows: number, first: number, width: number, scale: number, lse: number): void {
    checkBlock('probsRows', ld, rows, first, width);
    this.#x.probsRows(s, ld, rows, first, width, scale, lse);
  }

  /**
   * The softmax backward, with the score scale folded in: ds_j = p_j·(dp_j − Σ_k p_k·dp_k)·scale over the
   * live entries of each row, zeros past them. ds overwrites dp (rows `ldD` floats apart); p rows `ldP` apart.
   */
  softmaxBackwardRows(p: number, ldP: number, ds: number, ldD: number, rows: number, first: number, width: number, scale: number): void {
    checkBlock('softmaxBackwardRows', Math.min(ldP, ldD), rows, first, width);
    this.#x.softmaxBackwardRows(p, ldP, ds, ldD, rows, first, width, scale);
  }
}

/** A block whose live entries would run past its width (or its width past the row stride) would write out of bounds. */
function checkBlock(what: string, ld: number, rows: number, first: number, width: number): void {
  if (!(first >= 0 && rows >= 0 && first + rows <= width && width <= ld)) {
    throw new RangeError(`attention ${what}: rows ${first}…${first + rows - 1} need width ≥ ${first + rows} ≤ row stride, got width ${width}, stride ${ld}`);
  }
}
