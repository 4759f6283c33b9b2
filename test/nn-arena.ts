// A replica's arena for the layer tests: one shared WebAssembly.Memory (as the engine's), the Kernels over
// it (GEMM, NnOps, a scratch area per member), and buffers laid out with fences of sentinels between them.
// written() checks that a run changed nothing but the buffers it may write (and the scratch): every other
// float of the memory — inputs, fences, other buffers — must keep its bits.

import { expect } from 'chai';
import { Matmul } from '../src/kernels/matmul.js';
import { NnOps } from '../src/kernels/nn-ops.js';
import { resolveFlavor } from '../src/kernels/wasm-modules.js';
import { type Kernels, createKernels } from '../src/nn/kernels.js';
import type { Ptr } from '../src/nn/program.js';

/** Sentinel floats between buffers (bits no kernel produces by accident). */
export const kFence = 16;
export const kSentinel = -1234.5;
const kMembers = 3;

export interface Region {
  readonly name: string;
  readonly ptr: Ptr;
  readonly floats: number;
}

export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly f32: Float32Array;
  readonly i32: Int32Array;
  readonly kernels: Kernels;
  readonly #buffers: Region[] = [];
  readonly #scratch: [number, number];
  #at: number;
  #before: Uint32Array | null = null;

  /** Room for `floats` floats of buffers (plus fences and scratch for 3 members). */
  constructor(floats: number) {
    const probe = new Matmul(new WebAssembly.Memory({ initial: 1 }), resolveFlavor('auto'));
    const scratchBytes = (probe.maxScratchBytes + 63) & ~63;
    const bytes = 64 + kMembers * scratchBytes + 4 * (floats + kFence * 64) + 4096;
    const pages = Math.ceil(bytes / 65536) + 1;
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
    this.f32.fill(kSentinel);
    const scratchAt = 64;
    this.#scratch = [scratchAt, scratchAt + kMembers * scratchBytes];
    this.#at = this.#scratch[1] + 4 * kFence;
    this.kernels = createKernels(this.memory, resolveFlavor('auto'), (member: number) => scratchAt + member * scratchBytes, scratchBytes);
  }

  /** A buffer of `floats` floats (16-byte aligned, fenced), filled with `values` or NaN. */
  alloc(name: string, floats: number, values?: ArrayLike<number>): Ptr {
    const ptr = this.#at;
    this.#at = (ptr + 4 * floats + 4 * kFence + 15) & ~15;
    if (this.#at + 4 * kFence > this.memory.buffer.byteLength) throw new Error(`test arena: no room for ${name}`);
    this.#buffers.push({ name, ptr, floats });
    if (values) this.set(ptr, values);
    else this.f32.fill(Number.NaN, ptr / 4, ptr / 4 + floats);
    return ptr;
  }

  /** int32 ids. */
  allocInts(name: string, values: ArrayLike<number>): Ptr {
    const ptr = this.alloc(name, values.length);
    this.i32.set(values, ptr / 4);
    return ptr;
  }

  set(ptr: Ptr, values: ArrayLike<number>): void {
    this.f32.set(values, ptr / 4);
  }

  /** A copy of `floats` floats at ptr. */
  get(ptr: Ptr, floats: number): Float32Array {
    return this.f32.slice(ptr / 4, ptr / 4 + floats);
  }

  /** Fill a buffer with NaN (an output before the call). */
  poison(ptr: Ptr, floats: number): void {
    this.f32.fill(Number.NaN, ptr / 4, ptr / 4 + floats);
  }

  /** Remember every bit of the memory (before a run). */
  snapshot(): void {
    this.#before = new Uint32Array(this.memory.buffer).slice();
  }

  /** Every float outside `outputs` and the scratch kept its bits since snapshot(); the offender is named. */
  written(...outputs: Ptr[]): void {
    const before = this.#before;
    if (before === null) throw new Error('test arena: written() before snapshot()');
    const now = new Uint32Array(this.memory.buffer);
    const allowed = outputs.map((ptr) => {
      const b = this.#buffers.find((x) => x.ptr === ptr);
      if (!b) throw new Error(`test arena: no buffer at ${ptr}`);
      return [ptr / 4, ptr / 4 + b.floats];
    });
    allowed.push([this.#scratch[0] / 4, this.#scratch[1] / 4]);
    allowed.sort((a, b) => a[0] - b[0]);
    let i = 0;
    for (const [from, to] of [...allowed, [now.length, now.length]]) {
      for (; i < from; i++) {
        if (now[i] !== before[i]) expect.fail(`float ${i} (byte ${4 * i}, ${this.#where(4 * i)}) changed: ${before[i].toString(16)} → ${now[i].toString(16)}`);
      }
      i = Math.max(i, to);
    }
  }

  #where(byte: number): string {
    for (const b of this.#buffers) {
      if (byte >= b.ptr && byte < b.ptr + 4 * b.floats) return `inside ${b.name}`;
      if (byte >= b.ptr + 4 * b.floats && byte < b.ptr + 4 * (b.floats + kFence)) return `in the fence after ${b.name}`;
    }
    return 'outside every buffer';
  }
}

/** The bits of a Float32Array, as hex (for bit-for-bit comparisons that print well). */
export function bits(x: Float32Array): string {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex');
}

/**
 * run(members) for 1, 2 and 3 members (each on a fresh arena with the same inputs) must give the same bits
 * in every output; returns the outputs of 1 member.
 */
export function sameForEveryTeam(run: (members: number) => Float32Array[]): Float32Array[] {
  const results = [1, 2, 3].map(run);
  for (let m = 1; m < results.length; m++) {
    results[m].forEach((out, i) => expect(bits(out), `output ${i}: ${m + 1} members vs 1`).to.equal(bits(results[0][i])));
  }
  return results[0];
}
