// One GEMM instance over one WebAssembly.Memory: C = act(op(A)·op(B) + bias) on float32 matrices addressed by
// byte offset in that memory. The packing scratch comes from the memory's own allocator (the tfjs wasm
// backend's malloc) and only grows, when a call needs more than the largest so far: no allocation per call.

import { instantiate, type SimdFlavor } from './wasm-modules.js';

/** The memory's allocator (emscripten's _malloc/_free for the tfjs wasm backend). */
export interface Allocator {
  malloc(bytes: number): number;
  free(address: number): void;
}

/** Activations applied inside the kernel; anything else is the caller's to apply afterwards. */
export type GemmActivation = 'linear' | 'relu' | 'relu6' | 'leakyrelu';

const kActivationCode: Readonly<Record<GemmActivation, number>> = Object.freeze({ linear: 0, relu: 1, relu6: 2, leakyrelu: 3 });

export interface GemmCall {
  /** C is m×n, the shared dimension is k. */
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** Byte address of A, stored m×k row-major, or k×m when transposeA. */
  readonly a: number;
  readonly transposeA: boolean;
  /** Byte address of B, stored k×n row-major, or n×k when transposeB. */
  readonly b: number;
  readonly transposeB: boolean;
  /** Byte address of C, m×n row-major. Every element is written; none is read first. */
  readonly c: number;
  /** Byte address of the bias: n values (one per column) or 1 (added everywhere). */
  readonly bias?: { readonly address: number; readonly size: 'n' | 1 };
  readonly activation?: GemmActivation;
  /** Slope of leakyrelu below 0. */
  readonly alpha?: number;
}

interface GemmExports {
  gemm(
    m: number, n: number, k: number, a: number, rsA: number, csA: number, b: number, rsB: number, csB: number,
    c: number, ldc: number, bias: number, biasMode: number, act: number, alpha: number, scratch: number, accumulate: number,
  ): void;
  scratchBytes(m: number, n: number, k: number): number;
}

const kScratchAlign = 16;

export class Gemm {
  readonly flavor: SimdFlavor;
  readonly #exports: GemmExports;
  readonly #allocator: Allocator;
  #scratch = 0;
  #scratchBytes = 0;

  constructor(memory: WebAssembly.Memory, allocator: Allocator, flavor: SimdFlavor) {
    this.flavor = flavor;
    this.#exports = instantiate(flavor === 'relaxed' ? 'gemm-relaxed' : 'gemm', memory) as unknown as GemmExports;
    this.#allocator = allocator;
  }

  /** Bytes of scratch held now (it grows with the largest call, never per call). */
  get scratchBytes(): number {
    return this.#scratchBytes;
  }

  run(call: GemmCall): void {
    const { m, n, k } = call;
    if (m === 0 || n === 0) return;
    const scratch = this.#ensureScratch(this.#exports.scratchBytes(m, n, k));
    const [rsA, csA] = call.transposeA ? [1, m] : [k, 1];
    const [rsB, csB] = call.transposeB ? [1, k] : [n, 1];
    const biasMode = call.bias === undefined ? 0 : call.bias.size === 1 ? 2 : 1;
    this.#exports.gemm(
      m, n, k, call.a, rsA, csA, call.b, rsB, csB, call.c, n,
      call.bias?.address ?? 0, biasMode, kActivationCode[call.activation ?? 'linear'], call.alpha ?? 0, scratch, 0,
    );
  }

  /** Give the scratch back to the allocator (the instance stays usable: the next call takes it again). */
  release(): void {
    if (this.#scratchBytes > 0) this.#allocator.free(this.#scratch);
    this.#scratch = 0;
    this.#scratchBytes = 0;
  }

  #ensureScratch(bytes: number): number {
    if (bytes + kScratchAlign > this.#scratchBytes) {
      this.release();
      const size = bytes + kScratchAlign;
      // `>>> 0`: emscripten's malloc returns a signed int32 above 2 GiB.
      const address = this.#allocator.malloc(size) >>> 0;
      if (address === 0) throw new Error(`GEMM scratch: the allocator could not give ${size} bytes`);
      this.#scratch = address;
      this.#scratchBytes = size;
    }
    return ((this.#scratch + kScratchAlign - 1) & ~(kScratchAlign - 1)) >>> 0;
  }
}
