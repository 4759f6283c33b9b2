// WebAssembly SIMD shard kernels: the per-element formula of adamw-js.ts in float32 f32x4 lanes, run
// directly on a shard's shared WebAssembly.Memory (the .wat source is src/kernels/wasm/adamw.wat, compiled at
// build time by scripts/build-wasm.mjs). One instance per memory per thread, cached in a WeakMap keyed by the
// memory; the module is compiled once per thread. The JS side only reads the step's scalars from the control
// block and passes byte addresses; the loop over the elements is all in wasm.
//
// Numbers: update() computes in float32 (every op correctly rounded, no FMA), so it agrees with the float64
// JS kernel to float32 rounding, and with itself bit for bit whatever the range split (thread count).
// sumSquares() computes in float64 exactly as the JS kernel does, so the two give the same bits.

import { readFileSync } from 'node:fs';
import {
  kBeta1Field,
  kBeta2Field,
  kCautiousField,
  kClipScaleField,
  kClipValueField,
  kDecayPostOffset,
  kDecayPreOffset,
  kEpsField,
  kInvSlotsField,
  kL2Offset,
  kOneMinusBeta1Field,
  kOneMinusBeta2Field,
  kSqrtScaleField,
  kStepSizeOffset,
  tensorField,
} from '../memory/control.js';
import type { ShardStates } from '../memory/shard-states.js';
import type { ShardKernels } from './adamw-js.js';

const kWasmFile = new URL('./wasm/adamw.wasm', import.meta.url);

interface AdamwExports {
  update(
    p: number, m: number, v: number, vmax: number, g: number, gstride: number, nslots: number, start: number, end: number,
    b1: number, b2: number, omb1: number, omb2: number, eps: number, sqrtScale: number,
    invSlots: number, clip: number, clipScale: number, decayPre: number, stepSize: number, decayPost: number, l2: number,
    simple: number, cautious: number,
  ): void;
  sumSquares(
    g: number, gstride: number, nslots: number, start: number, end: number, invSlots: number, clip: number,
    l0: number, l1: number, l2: number, l3: number, l4: number, l5: number, l6: number, l7: number,
  ): number;
  withinBound(a: number, b: number, bound: number): number;
  lane1(): number;
  lane2(): number;
  lane3(): number;
  lane4(): number;
  lane5(): number;
  lane6(): number;
  lane7(): number;
}

/** Per-shard constants the kernels pass on every call, computed once per memory. */
interface Bound {
  readonly exports: AdamwExports;
  readonly p: number;
  readonly m: number;
  readonly v: number;
  /** −1 without AMSGrad (the wasm side tests for it). */
  readonly vmax: number;
  readonly g: number;
  readonly gstride: number;
  readonly nslots: number;
}

let compiled: WebAssembly.Module | null = null;
let compileError: Error | null = null;

/** Compile the module once per thread; null (with the reason kept) when this runtime cannot. */
function wasmModule(): WebAssembly.Module | null {
  if (compiled !== null || compileError !== null) return compiled;
  try {
    const bytes = readFileSync(kWasmFile);
    if (!WebAssembly.validate(bytes)) throw new Error('this runtime rejects WebAssembly SIMD or shared memory (validate() is false)');
    compiled = new WebAssembly.Module(bytes);
  } catch (err) {
    compileError = err instanceof Error ? err : new Error(String(err));
  }
  return compiled;
}

/** True when the wasm kernel builds and runs here (checked once on a tiny shared memory). */
export function wasmKernelAvailable(): boolean {
  const mod = wasmModule();
  if (mod === null) return false;
  try {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    new WebAssembly.Instance(mod, { env: { memory } });
    return true;
  } catch (err) {
    compileError = err instanceof Error ? err : new Error(String(err));
    compiled = null;
    return false;
  }
}

/** Why the wasm kernel is unavailable (for error messages), or null. */
export function wasmKernelError(): Error | null {
  return compileError;
}

const bound = new WeakMap<WebAssembly.Memory, Bound>();

function bind(shard: ShardStates): Bound {
  let b = bound.get(shard.memory);
  if (b === undefined) {
    const mod = wasmModule();
    if (mod === null) throw new Error(`the wasm kernel is unavailable: ${compileError?.message ?? 'unknown reason'}`);
    const exports = new WebAssembly.Instance(mod, { env: { memory: shard.memory } }).exports as unknown as AdamwExports;
    const r = shard.regions;
    b = {
      exports,
      p: r.params,
      m: r.m,
      v: r.v,
      vmax: r.vmax < 0 ? -1 : r.vmax,
      g: r.grads[0],
      gstride: shard.range.capacity * 4,
      nslots: r.grads.length,
    };
    bound.set(shard.memory, b);
  }
  return b;
}

function sumSquares(shard: ShardStates, start: number, end: number, s: Float64Array, lanes: Float64Array, lane0: number): void {
  if (end <= start) return;
  const b = bind(shard);
  // The lanes go in rotated so that relative lane k is lanes[(lane0 + k) mod 8] (kSumLanes), and come back the same way.
  const j0 = lane0 & 7;
  const j1 = (lane0 + 1) & 7;
  const j2 = (lane0 + 2) & 7;
  const j3 = (lane0 + 3) & 7;
  const j4 = (lane0 + 4) & 7;
  const j5 = (lane0 + 5) & 7;
  const j6 = (lane0 + 6) & 7;
  const j7 = (lane0 + 7) & 7;
  const x = b.exports;
  lanes[j0] = x.sumSquares(
    b.g, b.gstride, b.nslots, start, end, s[kInvSlotsField], s[kClipValueField],
    lanes[j0], lanes[j1], lanes[j2], lanes[j3], lanes[j4], lanes[j5], lanes[j6], lanes[j7],
  );
  lanes[j1] = x.lane1();
  lanes[j2] = x.lane2();
  lanes[j3] = x.lane3();
  lanes[j4] = x.lane4();
  lanes[j5] = x.lane5();
  lanes[j6] = x.lane6();
  lanes[j7] = x.lane7();
}

function update(shard: ShardStates, start: number, end: number, s: Float64Array, tensor: number): void {
  if (end <= start) return;
  const b = bind(shard);
  const invSlots = s[kInvSlotsField];
  const clip = s[kClipValueField];
  const clipScale = s[kClipScaleField];
  const decayPost = s[tensorField(tensor, kDecayPostOffset)];
  const l2 = s[tensorField(tensor, kL2Offset)];
  const cautious = s[kCautiousField] !== 0;
  // The specialised loops drop operations that are exact identities with these values (see adamw.wat).
  const simple =
    !cautious && b.vmax === -1 && clip === Number.POSITIVE_INFINITY && clipScale === 1 && l2 === 0 && decayPost === 1 && (b.nslots !== 1 || invSlots === 1);
  b.exports.update(
    b.p, b.m, b.v, b.vmax, b.g, b.gstride, b.nslots, start, end,
    s[kBeta1Field], s[kBeta2Field], s[kOneMinusBeta1Field], s[kOneMinusBeta2Field], s[kEpsField], s[kSqrtScaleField],
    invSlots, clip, clipScale,
    s[tensorField(tensor, kDecayPreOffset)], s[tensorField(tensor, kStepSizeOffset)], decayPost, l2,
    simple ? 1 : 0,
    cautious ? 1 : 0,
  );
}

function slotWithinBound(shard: ShardStates, slot: number, start: number, end: number, bound: number): boolean {
  if (end <= start) return true;
  const b = bind(shard);
  const base = b.g + slot * b.gstride;
  return b.exports.withinBound(base + 4 * start, base + 4 * end, bound) === 1;
}

export const wasmKernels: ShardKernels = Object.freeze({ name: 'wasm', sumSquares, update, slotWithinBound });
