// Embedding lookups and their gradients: the GPT's input (token row + position row, llm.c encoder_forward/
// backward) and char-lm's table lookup.
//
// Split: the forward by rows (each output row is one member's copy); the backward by columns, on whole cache
// lines: member j owns columns [c0, c1) of every table row and adds the positions' gradients into them in
// position order, so a row that several positions share gets their sum in one order for any team (llm.c
// adds in the same order, with one thread). dwpe = Σ_b dout[b] is a sum over the batch, also by columns of
// its T·C elements. Each backward is one phase. Scratch: none.
//
// Token ids: the data layer checks them, and the kernels check them again before they write anything. The
// backwards know V: an id outside [0, V) makes the phase throw `id 70000 at position 13 is outside [0, 50257)`
// with nothing written (every member checks all the ids before it writes). The forwards are not given V:
// they refuse only an id that would read past the memory (rowsInMemory below), negative ones included, and
// the member that meets it writes none of its rows (the others' rows of out may be written); an id just past
// V reads what follows the table into out, and the backward of the same step refuses it (tested in
// test/nn-embedding.test.ts).

import { checkBuffers, checkSizes, kLineFloats } from './checks.js';
import type { Kernels } from './kernels.js';
import { memberSlice, type Program, type Ptr } from './program.js';

/**
 * Table rows an id may address in a forward, which is not given V: those between the table and the end of
 * the memory. An id past them (or negative) throws with nothing written; one past V but inside them reads
 * whatever follows the table (never writes outside out), and the backward, which knows V, then refuses it.
 */
function rowsInMemory(k: Kernels, table: Ptr, rowFloats: number): number {
  return Math.floor((k.memory.buffer.byteLength - table) / (4 * rowFloats));
}
const kForwardLimit = 'the table rows the memory holds (the forward is not given V)';

/** out [B, T, C] = wte[tokens[b·T + t]] + wpe[t]; tokens i32 [B, T]. */
export function encoderForward(p: Program, k: Kernels, out: Ptr, tokens: Ptr, wte: Ptr, wpe: Ptr, B: number, T: number, C: number): void {
  checkSizes('encoderForward', { B, T, C });
  checkBuffers('encoderForward', k, { out: [out, B * T * C], tokens: [tokens, B * T], wte: [wte, C], wpe: [wpe, T * C] });
  const limit = rowsInMemory(k, wte, C);
  p.push('forward', (member, members) => {
    const [r0, r1] = memberSlice(B * T, member, members);
    k.ops.encoderForward(out, tokens, wte, wpe, r0, r1, T, C, limit, kForwardLimit);
  });
}

/** dwte [V, C] = or += (accumulateWte: the tied head wrote its part) the scatter of dout [B, T, C]; dwpe [T, C] = Σ_b dout[b] (written). */
export function encoderBackward(p: Program, k: Kernels, dwte: Ptr, dwpe: Ptr, dout: Ptr, tokens: Ptr, B: number, T: number, C: number, V: number, opts: { accumulateWte: boolean }): void {
  checkSizes('encoderBackward', { B, T, C, V });
  checkBuffers('encoderBackward', k, { dwte: [dwte, V * C], dwpe: [dwpe, T * C], dout: [dout, B * T * C], tokens: [tokens, B * T] });
  const zero = !opts.accumulateWte;
  p.push('backward', (member, members) => {
    const [c0, c1] = memberSlice(C, member, members, kLineFloats);
    k.ops.scatterColumns(dwte, dout, tokens, B * T, C, c0, c1, V, zero);
    const [d0, d1] = memberSlice(T * C, member, members, kLineFloats);
    k.ops.columnSums(dwpe, dout, B, T * C, d0, d1, false);
  });
}

/** out [count, E] = table[ids[r]] for r < count (char-lm: every example's context positions, flattened). */
export function embeddingForward(p: Program, k: Kernels, out: Ptr, ids: Ptr, table: Ptr, count: number, E: number): void {
  checkSizes('embeddingForward', { count, E });
  checkBuffers('embeddingForward', k, { out: [out, count * E], ids: [ids, count], table: [table, E] });
  const limit = rowsInMemory(k, table, E);
  p.push('forward', (member, members) => {
    const [r0, r1] = memberSlice(count, member, members);
    if (r1 > r0) k.ops.gatherRows(out, ids, table, r0, r1, E, limit, kForwardLimit);
  });
}

/** dtable [V, E] written: zeroed, then the scatter of dout [count, E]. */
export function embeddingBackward(p: Program, k: Kernels, dtable: Ptr, dout: Ptr, ids: Ptr, count: number, E: number, V: number): void {
  checkSizes('embeddingBackward', { count, E, V });
  checkBuffers('embeddingBackward', k, { dtable: [dtable, V * E], dout: [dout, count * E], ids: [ids, count] });
  p.push('backward', (member, members) => {
    const [c0, c1] = memberSlice(E, member, members, kLineFloats);
    k.ops.scatterColumns(dtable, dout, ids, count, E, c0, c1, V, true);
  });
}
