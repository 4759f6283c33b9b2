// A replica's arena: one shared WebAssembly.Memory that holds everything its step touches besides the
// shard memories — a copy of the parameters, the gradients on their way to the gradient slot, the batch's
// token ids, every activation the backward needs and its gradient, and each member's scratch. Its layout is
// a list of named slots laid end to end on 64-byte boundaries, computed from (model config, micro-batch)
// before anything is allocated; the same list is the memory plan a run prints and checks.

import type { Ptr } from './program.js';

/** A run of 4-byte elements (float32, or int32 token ids). */
export interface SlotSpec {
  readonly name: string;
  readonly elements: number;
}

/** One wasm32 memory holds at most 4 GiB (65536 pages of 64 KiB). */
export const kMaxArenaBytes = 65536 * 65536;
const kPageBytes = 65536;
const kSlotAlign = 64;

export class ArenaLayout {
  readonly #at = new Map<string, { offset: Ptr; elements: number }>();
  /** Bytes the slots take, from 0 (the first slot starts at byte kSlotAlign: address 0 stays unused). */
  readonly bytes: number;

  constructor(slots: readonly SlotSpec[]) {
    let at = kSlotAlign;
    for (const s of slots) {
      if (!Number.isSafeInteger(s.elements) || s.elements < 0) throw new RangeError(`arena slot ${s.name}: ${s.elements} elements`);
      if (this.#at.has(s.name)) throw new RangeError(`arena slot ${s.name} is declared twice`);
      this.#at.set(s.name, { offset: at, elements: s.elements });
      at += Math.ceil((4 * s.elements) / kSlotAlign) * kSlotAlign;
    }
    this.bytes = at;
  }

  /** Byte offset of slot `name`. */
  at(name: string): Ptr {
    const slot = this.#at.get(name);
    if (slot === undefined) throw new RangeError(`no arena slot named ${name}`);
    return slot.offset;
  }

  elements(name: string): number {
    const slot = this.#at.get(name);
    if (slot === undefined) throw new RangeError(`no arena slot named ${name}`);
    return slot.elements;
  }

  has(name: string): boolean {
    return this.#at.has(name);
  }
}

/** A shared memory of `bytes` (zero-filled, never grown); past 4 GiB is the caller's to refuse first. */
export function allocateArena(bytes: number): WebAssembly.Memory {
  const pages = Math.ceil(bytes / kPageBytes);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}
