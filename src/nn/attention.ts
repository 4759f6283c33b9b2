// Causal multi-head self-attention, forward and backward: llm.c's attention_forward / attention_backward
// (train_gpt2.c) on our GEMM and the row kernels of kernels/attention-ops.ts.
//
// Layouts (byte offsets into the arena, float32):
//   qkv  [B, T, 3C]  columns q | k | v; head h uses columns [h·d, (h+1)·d) of each, d = C / heads
//   out  [B, T, C]   per head softmax(q·kᵀ/√d, causal: i sees j ≤ i)·v, heads side by side
//   att  [B, heads, T, T]  ('probs') the probabilities, zeros above the diagonal (llm.c's att)
//   lse  [B, heads, T]     ('lse') log Σ_j exp(q_i·k_j/√d) per row: the backward rebuilds att from it
// For the T and B passed, which may be smaller than the arena was planned for.
//
// The arithmetic is the GEMM's, with strides straight into qkv (row stride 3C), out and dout (row stride C):
// no copies of q, k, v per head. A (batch, head) unit's query rows go in blocks of kBlockRows; block [i0, i1)
// needs keys [0, i1) only, so the masked upper triangle is computed only within a block (T·R/2 of T²/2):
//   forward   S = q·kᵀ (rows × i1) → softmax rows (scaled, masked, lse) → out[i0, i1) = P·v[0, i1)
//   backward  P (saved, or S → P again from lse) ; dP = dout·vᵀ ; dS = P ⊙ (dP − Σ_j P·dP)/√d ;
//             dq[i0, i1) = dS·k[0, i1) ; dk[0, i1) += dSᵀ·q[i0, i1) ; dv[0, i1) += Pᵀ·dout[i0, i1)
// dk and dv sum over the blocks in block order: the first block to reach a row writes it (C = …), later
// blocks add (C += …), so every element of dqkv is written and nothing needs zeroing first.
//
// 'probs', 'lse' and 'none' give the same forward bits, and 'probs' and 'lse' the same backward bits: an
// element of S is the same GEMM sum wherever it is stored, and the row kernels define p through the row's
// lse (attention.wat.mjs), so probsRows rebuilds from the saved lse exactly the p that softmaxRows stored.
// The test checks both.
//
// Split across a team, deterministic by construction (each output element and each sum is computed whole by
// one member, in an order fixed by the shapes):
//   forward   by (unit, block) items, cut into contiguous runs of near-equal work (a block's work grows with
//             i1): items are independent (their own rows of out, att, lse), so the bits do not depend on
//             the team, and B·heads smaller than the team (B = 1, 12 heads, 8 threads) still splits evenly.
//   backward  by units (memberSlice over B·heads): dk and dv sum over every query block of a unit, so a unit
//             stays with one member. Splitting a unit further would need D_i = Σ_j P·dP before the blocks
//             (a pass of its own) and dq and dk/dv in separate passes, each recomputing dS: 1.5× the work,
//             which pays only when B·heads is under half the team.
//
// Scratch: a member's scratch (k.scratch(member)) starts with the GEMM's packing buffers
// (matmul.maxScratchBytes, rounded up to 16); attention's own attentionScratchBytes(…) follow, so
// k.scratchBytes must be at least their sum (checked when the phase is built).

import type { MatmulCall } from '../kernels/matmul.js';
import type { Kernels } from './kernels.js';
import { memberSlice, type Program, type Ptr } from './program.js';

export type AttentionSaved =
  | { readonly kind: 'probs'; readonly att: Ptr } // the probabilities, [B, heads, T, T] (llm.c's att)
  | { readonly kind: 'lse'; readonly lse: Ptr } // only log Σ exp per row, [B, heads, T]: the backward recomputes the scores (for long contexts)
  | { readonly kind: 'none' }; // inference: nothing kept

/**
 * Query rows per block: the masked work a block wastes is R²/2 of its R·i1, while each block's GEMMs
 * pack their B operand (d·i1 floats) once per R rows. 64 keeps the waste at 6% of T = 1024 and the packing
 * at 1/64 of the products.
 */
const kBlockRows = 64;

/** A MatmulCall reused for every product of a phase (no allocation inside a step). */
type Call = { -readonly [K in keyof MatmulCall]: MatmulCall[K] };

interface Shape {
  readonly B: number;
  readonly T: number;
  readonly C: number;
  readonly heads: number;
  readonly d: number;
  /** 1/√d in float32: the kernels multiply scores by exactly this. */
  readonly scale: number;
  readonly units: number;
  readonly rowsPerBlock: number;
  readonly blocks: number;
}

const positiveInteger = (x: number) => Number.isInteger(x) && x > 0;

function shapeOf(what: string, B: number, T: number, C: number, heads: number): Shape {
  for (const [name, value] of [['B', B], ['T', T], ['C', C], ['heads', heads]] as const) {
    if (!positiveInteger(value)) throw new RangeError(`${what}: ${name} must be a positive integer, got ${value}`);
  }
  if (C % heads !== 0) throw new RangeError(`${what}: C = ${C} is not a multiple of heads = ${heads}`);
  const d = C / heads;
  const rowsPerBlock = Math.min(kBlockRows, T);
  return { B, T, C, heads, d, scale: Math.fround(1 / Math.sqrt(d)), units: B * heads, rowsPerBlock, blocks: Math.ceil(T / rowsPerBlock) };
}

/** A buffer of `floats` floats at byte `ptr` must lie in the memory, float-aligned. */
function checkBuffer(what: string, name: string, ptr: Ptr, floats: number, memory: WebAssembly.Memory): void {
  if (!Number.isInteger(ptr) || ptr < 0 || ptr % 4 !== 0) throw new RangeError(`${what}: ${name} must be a 4-byte aligned byte offset, got ${ptr}`);
  const bytes = memory.buffer.byteLength;
  if (ptr + 4 * floats > bytes) throw new RangeError(`${what}: ${name} (${floats} floats at byte ${ptr}) runs past the memory's ${bytes} bytes`);
}

function checkSaved(what: string, saved: AttentionSaved, s: Shape, memory: WebAssembly.Memory, pass: 'forward' | 'backward'): void {
  switch (saved.kind) {
    case 'probs':
      return checkBuffer(what, 'saved.att', saved.att, s.units * s.T * s.T, memory);
    case 'lse':
      return checkBuffer(what, 'saved.lse', saved.lse, s.units * s.T, memory);
    case 'none':
      if (pass === 'backward') throw new RangeError(`${what}: saved.kind 'none' keeps nothing to differentiate; run the forward with 'probs' or 'lse'`);
      return;
    default:
      throw new RangeError(`${what}: saved.kind must be 'probs', 'lse' or 'none', got ${String((saved as { kind: unknown }).kind)}`);
  }
}

const roundUp16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * Per-member scratch bytes attention needs besides the GEMM's own (which comes first in the member's
 * scratch): a block of scores [R × T] where they are not stored in att, and in the backward a block of dP
 * (and, for 'lse', one of rebuilt probabilities). Grows with T, so a plan for the context covers every
 * shorter T.
 */
export function attentionScratchBytes(T: number, C: number, heads: number, kind: AttentionSaved['kind'], pass: 'forward' | 'backward'): number {
  const what = 'attentionScratchBytes';
  const s = shapeOf(what, 1, T, C, heads);
  if (kind !== 'probs' && kind !== 'lse' && kind !== 'none') throw new RangeError(`${what}: kind must be 'probs', 'lse' or 'none', got ${String(kind)}`);
  if (pass !== 'forward' && pass !== 'backward') throw new RangeError(`${what}: pass must be 'forward' or 'backward', got ${String(pass)}`);
  const block = roundUp16(4 * s.rowsPerBlock * T);
  if (pass === 'forward') return kind === 'probs' ? 0 : block;
  if (kind === 'none') throw new RangeError(`${what}: kind 'none' keeps nothing for a backward pass`);
  return kind === 'probs' ? block : 2 * block;
}

/** Where attention's own scratch starts within a member's, after checking the member's scratch holds both. */
function ownScratch(what: string, k: Kernels, need: number): number {
  const gemm = roundUp16(k.matmul.maxScratchBytes);
  if (k.scratchBytes < gemm + need) {
    throw new RangeError(`${what}: each member's scratch is ${k.scratchBytes} bytes, it needs ${gemm + need} (the GEMM's ${gemm} + attentionScratchBytes ${need})`);
  }
  return gemm;
}

function newCall(): Call {
  return { m: 0, n: 0, k: 0, a: 0, rsA: 0, csA: 0, b: 0, rsB: 0, csB: 0, c: 0, ldc: 0, accumulate: false };
}

/** C (+)= A·B through the reused call: A(i, kk) at a + 4·(i·rsA + kk·csA), B(kk, j) at b + 4·(kk·rsB + j·csB). */
function gemm(
  k: Kernels, call: Call, scratch: Ptr, m: number, n: number, depth: number,
  a: Ptr, rsA: number, csA: number, b: Ptr, rsB: number, csB: number, c: Ptr, ldc: number, accumulate: boolean,
): void {
  call.m = m;
  call.n = n;
  call.k = depth;
  call.a = a;
  call.rsA = rsA;
  call.csA = csA;
  call.b = b;
  call.rsB = rsB;
  call.csB = csB;
  call.c = c;
  call.ldc = ldc;
  call.accumulate = accumulate;
  k.matmul.run(call, scratch);
}

/** The first item of member `member`'s run: work before it ≥ member/members of the whole (prefix[i]: work of items < i). */
function costBoundary(prefix: Float64Array, member: number, members: number): number {
  const items = prefix.length - 1;
  const goal = prefix[items] * member;
  let lo = 0;
  let hi = items;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (prefix[mid] * members >= goal) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function attentionForward(p: Program, k: Kernels, out: Ptr, saved: AttentionSaved, qkv: Ptr, B: number, T: number, C: number, heads: number): void {
  const what = 'attentionForward';
  const s = shapeOf(what, B, T, C, heads);
  checkBuffer(what, 'qkv', qkv, B * T * 3 * C, k.memory);
  checkBuffer(what, 'out', out, B * T * C, k.memory);
  checkSaved(what, saved, s, k.memory, 'forward');
  const own = ownScratch(what, k, attentionScratchBytes(T, C, heads, saved.kind, 'forward'));
  // Work of an item (unit, block) ∝ rows·i1 (both products are rows × i1 × d); prefix sums over all items.
  const R = s.rowsPerBlock;
  const prefix = new Float64Array(s.units * s.blocks + 1);
  for (let item = 0; item < s.units * s.blocks; item++) {
    const i0 = (item % s.blocks) * R;
    const i1 = Math.min(T, i0 + R);
    prefix[item + 1] = prefix[item] + (i1 - i0) * i1;
  }
  const call = newCall();
  const row3 = 3 * C;
  const att = saved.kind === 'probs' ? saved.att : -1;
  const lse = saved.kind === 'lse' ? saved.lse : -1;
  p.push('forward', (member, members) => {
    const gemmScratch = k.scratch(member);
    const scores = gemmScratch + own;
    const end = costBoundary(prefix, member + 1, members);
    for (let item = costBoundary(prefix, member, members); item < end; item++) {
      const unit = Math.floor(item / s.blocks);
      const i0 = (item - unit * s.blocks) * R;
      const i1 = Math.min(T, i0 + R);
      const rows = i1 - i0;
      const b = Math.floor(unit / heads);
      const q = qkv + 4 * (b * T * row3 + (unit - b * heads) * s.d);
      const key = q + 4 * C;
      const value = q + 8 * C;
      // 'probs': straight into att (whole rows, zeros to T); otherwise a block of scratch, rows i1 wide.
      const P = att >= 0 ? att + 4 * (unit * T + i0) * T : scores;
      const ld = att >= 0 ? T : i1;
      gemm(k, call, gemmScratch, rows, i1, s.d, q + 4 * i0 * row3, row3, 1, key, 1, row3, P, ld, false);
      k.attention.softmaxRows(P, ld, rows, i0, ld, s.scale, lse >= 0 ? lse + 4 * (unit * T + i0) : null);
      const o = out + 4 * ((b * T + i0) * C + (unit - b * heads) * s.d);
      gemm(k, call, gemmScratch, rows, s.d, i1, P, ld, 1, value, row3, 1, o, C, false);
    }
  });
}

export function attentionBackward(p: Program, k: Kernels, dqkv: Ptr, dout: Ptr, qkv: Ptr, saved: AttentionSaved, B: number, T: number, C: number, heads: number): void {
  const what = 'attentionBackward';
  const s = shapeOf(what, B, T, C, heads);
  checkBuffer(what, 'dqkv', dqkv, B * T * 3 * C, k.memory);
  checkBuffer(what, 'dout', dout, B * T * C, k.memory);
  checkBuffer(what, 'qkv', qkv, B * T * 3 * C, k.memory);
  checkSaved(what, saved, s, k.memory, 'backward');
  const own = ownScratch(what, k, attentionScratchBytes(T, C, heads, saved.kind, 'backward'));
  const block = roundUp16(4 * s.rowsPerBlock * T);
  const call = newCall();
  const row3 = 3 * C;
  const R = s.rowsPerBlock;
  const att = saved.kind === 'probs' ? saved.att : -1;
  const lse = saved.kind === 'lse' ? saved.lse : -1;
  p.push('backward', (member, members) => {
    const gemmScratch = k.scratch(member);
    const dP = gemmScratch + own;
    const rebuilt = dP + block;
    const [first, last] = memberSlice(s.units, member, members);
    for (let unit = first; unit < last; unit++) {
      const b = Math.floor(unit / heads);
      const at = 4 * (b * T * row3 + (unit - b * heads) * s.d);
      const q = qkv + at;
      const key = q + 4 * C;
      const value = q + 8 * C;
      const dq = dqkv + at;
      const dk = dq + 4 * C;
      const dv = dq + 8 * C;
      const go = dout + 4 * (b * T * C + (unit - b * heads) * s.d);
      for (let i0 = 0; i0 < T; i0 += R) {
        const i1 = Math.min(T, i0 + R);
        const rows = i1 - i0;
        const qBlock = q + 4 * i0 * row3;
        const goBlock = go + 4 * i0 * C;
        let P: Ptr;
        let ldP: number;
        if (att >= 0) {
          P = att + 4 * (unit * T + i0) * T;
          ldP = T;
        } else {
          // The forward's scores, the same GEMM sums, → the forward's probabilities from its lse.
          P = rebuilt;
          ldP = i1;
          gemm(k, call, gemmScratch, rows, i1, s.d, qBlock, row3, 1, key, 1, row3, P, ldP, false);
          k.attention.probsRows(P, ldP, rows, i0, i1, s.scale, lse + 4 * (unit * T + i0));
        }
        gemm(k, call, gemmScratch, rows, i1, s.d, goBlock, C, 1, value, 1, row3, dP, i1, false); // dP = dout·vᵀ
        k.attention.softmaxBackwardRows(P, ldP, dP, i1, rows, i0, i1, s.scale); // dP → dS (with 1/√d)
        gemm(k, call, gemmScratch, rows, s.d, i1, dP, i1, 1, key, row3, 1, dq + 4 * i0 * row3, row3, false);
        // dk, dv rows [0, i0) were written by earlier blocks: add; rows [i0, i1) are this block's first.
        if (i0 > 0) {
          gemm(k, call, gemmScratch, i0, s.d, rows, dP, 1, i1, qBlock, row3, 1, dk, row3, true);
          gemm(k, call, gemmScratch, i0, s.d, rows, P, 1, ldP, goBlock, C, 1, dv, row3, true);
        }
        gemm(k, call, gemmScratch, rows, s.d, rows, dP + 4 * i0, 1, i1, qBlock, row3, 1, dk + 4 * i0 * row3, row3, false);
        gemm(k, call, gemmScratch, rows, s.d, rows, P + 4 * i0, 1, ldP, goBlock, C, 1, dv + 4 * i0 * row3, row3, false);
      }
    }
  });
}
