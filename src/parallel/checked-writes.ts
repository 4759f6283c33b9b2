// Gradients written and checked in one pass. The non-finite check must see every gradient element before
// any parameter changes; done as its own phase it reads the gradients once more (4 of the step's 28 bytes
// per parameter, and a pool round trip). But whoever writes a gradient into its slot reads it anyway: here
// each piece is copied in, then checked by the kernel while it is still in cache, and a slot written whole
// this way is stamped with the current gradient epoch (control.ts). A step whose slots all carry the stamp
// skips the separate scan. A slot written any other way (through the live views) carries no stamp and is
// scanned as before.
//
// The check: every element finite with |x| <= kCheckedBound = 2^121, so that the sum of up to 64 slots
// cannot overflow float32 in the update (a larger value is not refused: its slot is just not stamped, and
// the step's scan decides).

import { kCheckedStampBase, kGradEpochField, type ControlBlock } from '../memory/control.js';
import type { Layout } from '../memory/layout.js';
import type { ShardStates } from '../memory/shard-states.js';
import type { ShardKernels } from '../kernels/shard-kernels.js';

export const kCheckedBound = 2 ** 121;
/** Floats copied before each check: 64 KiB, so the check reads from L2, not memory. */
const kPieceFloats = 16384;

export interface SlotWriter {
  readonly layout: Layout;
  readonly shards: readonly ShardStates[];
  readonly control: ControlBlock;
  readonly kernels: ShardKernels;
}

/**
 * Copy `values` (the whole tensor `tensor`) into gradient slot `slot`; true when every element is finite and
 * within kCheckedBound. The copy is complete either way.
 */
export function writeChecked(w: SlotWriter, slot: number, tensor: number, values: ArrayLike<number>): boolean {
  const typed = 'subarray' in values ? (values as Float32Array) : null;
  let ok = true;
  for (const seg of w.layout.segments) {
    if (seg.tensor !== tensor) continue;
    const shard = w.shards[seg.shard];
    const dest = shard.grads[slot];
    for (let a = 0; a < seg.length; a += kPieceFloats) {
      const n = Math.min(kPieceFloats, seg.length - a);
      const from = seg.tensorStart + a;
      const at = seg.shardStart + a;
      if (typed) dest.set(typed.subarray(from, from + n), at);
      else for (let i = 0; i < n; i++) dest[at + i] = values[from + i];
      ok = w.kernels.slotWithinBound(shard, slot, at, at + n, kCheckedBound) && ok;
    }
  }
  return ok;
}

/** Stamp slot `slot` as written whole and checked in the current epoch (or clear its stamp). */
export function stampSlot(control: ControlBlock, slot: number, checked: boolean): void {
  // Ordering: the slot's writes and this store reach the coordinator through the task's completion message
  // (or happen on its own thread), which orders them before step() reads the stamp.
  Atomics.store(control.ints, kCheckedStampBase + slot, checked ? Atomics.load(control.ints, kGradEpochField) : 0);
}

/** Are all `slots` stamped in the current epoch? */
export function allSlotsChecked(control: ControlBlock, slots: number): boolean {
  const epoch = Atomics.load(control.ints, kGradEpochField);
  for (let r = 0; r < slots; r++) if (Atomics.load(control.ints, kCheckedStampBase + r) !== epoch) return false;
  return true;
}

/** A step consumed the slots: every stamp is stale from now on. */
export function nextGradEpoch(control: ControlBlock): void {
  Atomics.add(control.ints, kGradEpochField, 1);
}
