// A small arena for the attention layer's tests: qkv, dout and every output in one memory, each output
// fenced with sentinels and poisoned with NaN before a run; Kernels over it with a scratch per member sized
// for kPlannedT (the context the "arena" was planned for: every case runs at that T or a shorter one).

import { expect } from 'chai';
import { Matmul } from '../src/kernels/matmul.js';
import { resolveFlavor } from '../src/kernels/wasm-modules.js';
import { attentionBackward, attentionForward, attentionScratchBytes, type AttentionSaved } from '../src/nn/attention.js';
import { type Kernels, createKernels } from '../src/nn/kernels.js';
import { Program, runSerial } from '../src/nn/program.js';
import { worst, type AttentionShape } from './nn-reference-attention.js';

export const kPlannedT = 130;
export const kMembers = 3;
const kFence = 16;
const kSentinel = 1234.5;
const flavor = resolveFlavor('auto');
const gemmScratch = Math.ceil(new Matmul(new WebAssembly.Memory({ initial: 1 }), flavor).maxScratchBytes / 16) * 16;

export type Kind = AttentionSaved['kind'];

/** A member's scratch for every kind and pass at kPlannedT (what an arena plan would give). */
export function plannedScratchBytes(C: number, heads: number): number {
  const own = Math.max(
    ...(['probs', 'lse', 'none'] as const).map((kind) => attentionScratchBytes(kPlannedT, C, heads, kind, 'forward')),
    ...(['probs', 'lse'] as const).map((kind) => attentionScratchBytes(kPlannedT, C, heads, kind, 'backward')),
  );
  return gemmScratch + own;
}

export class AttentionArena {
  readonly memory: WebAssembly.Memory;
  readonly f32: Float32Array;
  readonly k: Kernels;
  readonly qkv: number;
  readonly dout: number;
  readonly out: number;
  readonly att: number;
  readonly lse: number;
  readonly dqkv: number;
  readonly #fenced: [number, number][] = [];
  #top = 64;

  constructor(readonly s: AttentionShape, scratchBytes = plannedScratchBytes(s.C, s.heads)) {
    const { B, T, C, heads } = s;
    const floats = 2 * B * T * 3 * C + 2 * B * T * C + B * heads * T * (T + 1) + 12 * kFence;
    this.memory = new WebAssembly.Memory({ initial: Math.ceil((4 * floats + kMembers * scratchBytes + 4096) / 65536) + 1 });
    this.f32 = new Float32Array(this.memory.buffer);
    this.qkv = this.#take(B * T * 3 * C);
    this.dout = this.#take(B * T * C);
    this.out = this.#take(B * T * C);
    this.att = this.#take(B * heads * T * T);
    this.lse = this.#take(B * heads * T);
    this.dqkv = this.#take(B * T * 3 * C);
    const scratch = (this.#top + 15) & ~15;
    this.k = createKernels(this.memory, flavor, (member) => scratch + member * scratchBytes, scratchBytes);
  }

  /** `floats` floats between fences of sentinels. */
  #take(floats: number): number {
    const at = (this.#top + 15) & ~15;
    this.f32.fill(kSentinel, at / 4, at / 4 + floats + 2 * kFence);
    const p = at + 4 * kFence;
    this.#fenced.push([p, floats]);
    this.#top = p + 4 * (floats + kFence);
    return p;
  }

  view(p: number, floats: number): Float32Array {
    return this.f32.subarray(p / 4, p / 4 + floats);
  }

  saved(kind: Kind): AttentionSaved {
    return kind === 'probs' ? { kind, att: this.att } : kind === 'lse' ? { kind, lse: this.lse } : { kind };
  }

  /** The forward with `members` members: out (and att or lse) poisoned first; copies of what it wrote. */
  forward(kind: Kind, members: number): { out: Float32Array; att: Float32Array | null; lse: Float32Array | null } {
    const { B, T, C, heads } = this.s;
    const units = B * heads;
    const inputs = this.#inputsBits();
    this.view(this.out, B * T * C).fill(Number.NaN);
    if (kind === 'probs') this.view(this.att, units * T * T).fill(Number.NaN);
    if (kind === 'lse') this.view(this.lse, units * T).fill(Number.NaN);
    const p = new Program();
    attentionForward(p, this.k, this.out, this.saved(kind), this.qkv, B, T, C, heads);
    runSerial(p, members);
    this.fencesIntact();
    expect(this.#inputsBits(), 'qkv and dout are read only').to.equal(inputs);
    return {
      out: this.view(this.out, B * T * C).slice(),
      att: kind === 'probs' ? this.view(this.att, units * T * T).slice() : null,
      lse: kind === 'lse' ? this.view(this.lse, units * T).slice() : null,
    };
  }

  /** The forward, then the backward, with `members` members: dqkv poisoned first; a copy of it. */
  backward(kind: Kind, members: number): Float32Array {
    const { B, T, C, heads } = this.s;
    this.forward(kind, members);
    const saved = kind === 'probs' ? this.view(this.att, B * heads * T * T).slice() : this.view(this.lse, B * heads * T).slice();
    const inputs = this.#inputsBits();
    this.view(this.dqkv, B * T * 3 * C).fill(Number.NaN);
    const p = new Program();
    attentionBackward(p, this.k, this.dqkv, this.dout, this.qkv, this.saved(kind), B, T, C, heads);
    runSerial(p, members);
    this.fencesIntact();
    expect(this.#inputsBits(), 'qkv and dout are read only').to.equal(inputs);
    const after = kind === 'probs' ? this.view(this.att, B * heads * T * T) : this.view(this.lse, B * heads * T);
    expect(bits(after), `saved ${kind} is read only`).to.equal(bits(saved));
    return this.view(this.dqkv, B * T * 3 * C).slice();
  }

  fencesIntact(): void {
    for (const [p, n] of this.#fenced) {
      for (let f = 0; f < kFence; f++) {
        expect(this.f32[p / 4 - kFence + f], `fence before byte ${p}`).to.equal(kSentinel);
        expect(this.f32[p / 4 + n + f], `fence after byte ${p}`).to.equal(kSentinel);
      }
    }
  }

  #inputsBits(): string {
    const { B, T, C } = this.s;
    return bits(this.view(this.qkv, B * T * 3 * C)) + bits(this.view(this.dout, B * T * C));
  }
}

export function bits(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
}

/** Expect every element within its bound, saying the worst one otherwise. */
export function expectWithin(what: string, got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>): void {
  const w = worst(got, want, bound);
  expect(w.ratio, `${what}: worst at ${w.at}: got ${got[w.at]}, float64 ${want[w.at]}, bound ${bound[w.at]}`).to.be.at.most(1);
}
