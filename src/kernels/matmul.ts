// The GEMM of wasm/gemm.wat.mjs for the built-in models' engine: C (+)= A·B (+ bias) on float32 matrices at
// byte offsets of one memory (a replica's arena), any row and column strides, the packing scratch given by
// the caller (each member of a team has its own). runPart() does one member's share of C: a contiguous run
// of rows or of columns. Every element of C is the same sum in the same order whoever computes it (the k
// blocking depends on k alone), so the bits never depend on how C is split.

import { partBoundary } from '../memory/layout.js';
import { instantiate, type SimdFlavor } from './wasm-modules.js';

export interface MatmulCall {
  /** C is m×n, the shared dimension is k. */
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** A(i, kk) is the float at a + 4·(i·rsA + kk·csA): row-major m×k is (k, 1), its transpose stored k×m is (1, m). */
  readonly a: number;
  readonly rsA: number;
  readonly csA: number;
  /** B(kk, j) is the float at b + 4·(kk·rsB + j·csB). */
  readonly b: number;
  readonly rsB: number;
  readonly csB: number;
  /** C(i, j) is the float at c + 4·(i·ldc + j). */
  readonly c: number;
  readonly ldc: number;
  /** n floats added to every row (a layer's bias), or none. */
  readonly bias?: number;
  /** C += A·B (+ bias) instead of C = …: a gradient summed over the uses of a tensor. */
  readonly accumulate?: boolean;
}

interface GemmExports {
  gemm(
    m: number, n: number, k: number, a: number, rsA: number, csA: number, b: number, rsB: number, csB: number,
    c: number, ldc: number, bias: number, biasMode: number, act: number, alpha: number, scratch: number, accumulate: number,
  ): void;
  scratchBytes(m: number, n: number, k: number): number;
  kMR: WebAssembly.Global;
  kNR: WebAssembly.Global;
  kKC: WebAssembly.Global;
  kMC: WebAssembly.Global;
  kNC: WebAssembly.Global;
}

/** Scratch alignment the kernel wants (its packed panels are read with v128 loads). */
const kScratchAlign = 16;

export class Matmul {
  readonly flavor: SimdFlavor;
  readonly #x: GemmExports;
  /** Row and column units of a split: whole micro-tiles. */
  readonly #mr: number;
  readonly #nr: number;

  constructor(memory: WebAssembly.Memory, flavor: SimdFlavor) {
    this.flavor = flavor;
    this.#x = instantiate(flavor === 'relaxed' ? 'gemm-relaxed' : 'gemm', memory) as unknown as GemmExports;
    this.#mr = this.#x.kMR.value as number;
    this.#nr = this.#x.kNR.value as number;
  }

  /** Scratch bytes one call of any size needs at most (the packing buffers are bounded by the blocking). */
  get maxScratchBytes(): number {
    const x = this.#x;
    return x.scratchBytes(x.kMC.value as number, x.kNC.value as number, x.kKC.value as number) + kScratchAlign;
  }

  /** The whole product on this thread; `scratch`: maxScratchBytes bytes, 16-byte aligned. */
  run(call: MatmulCall, scratch: number): void {
    this.#gemm(call, 0, call.m, 0, call.n, scratch);
  }

  /**
   * Member `member` of `members`: its rows of C when C has at least as many rows as columns, else its
   * columns, cut on whole micro-tiles.
   */
  runPart(call: MatmulCall, member: number, members: number, scratch: number): void {
    if (members === 1) return this.run(call, scratch);
    if (call.m >= call.n) {
      const i0 = partBoundary(call.m, member, members, this.#mr);
      const i1 = partBoundary(call.m, member + 1, members, this.#mr);
      this.#gemm(call, i0, i1, 0, call.n, scratch);
    } else {
      const j0 = partBoundary(call.n, member, members, this.#nr);
      const j1 = partBoundary(call.n, member + 1, members, this.#nr);
      this.#gemm(call, 0, call.m, j0, j1, scratch);
    }
  }

  /** Rows [i0, i1) × columns [j0, j1) of C. */
  #gemm(c: MatmulCall, i0: number, i1: number, j0: number, j1: number, scratch: number): void {
    if (i1 <= i0 || j1 <= j0) return;
    if ((scratch & (kScratchAlign - 1)) !== 0) throw new RangeError(`matmul: scratch at byte ${scratch} is not 16-byte aligned`);
    this.#x.gemm(
      i1 - i0, j1 - j0, c.k,
      c.a + 4 * i0 * c.rsA, c.rsA, c.csA,
      c.b + 4 * j0 * c.csB, c.rsB, c.csB,
      c.c + 4 * (i0 * c.ldc + j0), c.ldc,
      c.bias === undefined ? 0 : c.bias + 4 * j0, c.bias === undefined ? 0 : 1, 0, 0, scratch,
      c.accumulate ? 1 : 0,
    );
  }
}

const scratchByFlavor = new Map<SimdFlavor, number>();

/** Matmul.maxScratchBytes without a memory of one's own (the blocking constants are the module's). */
export function matmulScratchBytes(flavor: SimdFlavor): number {
  let bytes = scratchByFlavor.get(flavor);
  if (bytes === undefined) {
    bytes = new Matmul(new WebAssembly.Memory({ initial: 1 }), flavor).maxScratchBytes;
    scratchByFlavor.set(flavor, bytes);
  }
  return bytes;
}
