// Resident tasks: one long piscina task per thread that serves commands posted through shared memory, for
// work that comes back step after step with little in between (a small model's training steps). A piscina
// round trip costs ≈ 50–150 µs (a message each way, the main thread's event loop between); a command here costs
// two stores and a futex wake-up each way. Anything else the pool must run (the
// optimizer's phases, an evaluation, a close) first stops the residents, which end their tasks and free
// their threads.
//
// Per slot (one per resident), Int32 fields of a SharedArrayBuffer:
//   kSeq     commands posted to the slot so far; the resident waits for it to move (spin, then Atomics.wait)
//   kDone    commands it has finished; the poster waits for it (Atomics.wait in slices: Residents.done)
//   kOp      the command: kStop, or the handler's own op code
//   kArgs…   its integer arguments
// and one Float64 result per slot.

import { availableParallelism } from 'node:os';

const kSeq = 0;
const kDone = 1;
const kOp = 2;
const kArgs = 3;
export const kResidentArgs = 8;
const kSlotInts = 16;
/** The op that ends a resident's task. */
export const kStop = -1;

/**
 * Loads of kSeq before a resident sleeps: covers the optimizer's inline step in between (a few µs) — when
 * there is a core for it. With as many residents as cores, the poster's thread is one thread too many: a
 * resident that spins holds the core the poster needs to finish the step and post the next, so residents
 * sleep at once (`npm run bench:train -- --runs fixed`, 2 threads of 2 cores: with another job on the
 * machine 0.175 ms per step spinning, 0.097 not; on a quiet machine the same, 0.112–0.127 ms either way).
 */
const kSpins = 4000;
/** A sleeping resident looks again at least this often. */
const kWaitSliceMs = 500;
/** The poster's thread blocks at most this long before it lets its event loop run. */
const kPosterSliceMs = 2;

export interface ResidentBuffers {
  readonly slots: SharedArrayBuffer;
  readonly results: SharedArrayBuffer;
  /** Loads before a resident sleeps (see kSpins). */
  readonly spins: number;
}

/** `count` residents' slots, with `cores` cores for them and their poster. */
export function allocateResidents(count: number, cores = availableParallelism()): ResidentBuffers {
  return { slots: new SharedArrayBuffer(count * kSlotInts * 4), results: new SharedArrayBuffer(count * 8), spins: count < cores ? kSpins : 0 };
}

/** Worker side: serve slot `slot` until kStop; `handle(op, args)` returns the command's number (or throws: the task ends with it). */
export function serveResident(b: ResidentBuffers, slot: number, handle: (op: number, args: Int32Array) => number): void {
  const ints = new Int32Array(b.slots, slot * kSlotInts * 4, kSlotInts);
  const args = ints.subarray(kArgs, kArgs + kResidentArgs);
  const results = new Float64Array(b.results);
  let seen = Atomics.load(ints, kDone);
  for (;;) {
    let spins = 0;
    while (Atomics.load(ints, kSeq) === seen) {
      if (++spins > b.spins) Atomics.wait(ints, kSeq, seen, kWaitSliceMs);
    }
    seen++;
    // Acquire: the poster stored op and args before its Atomics.add of kSeq.
    const op = Atomics.load(ints, kOp);
    if (op === kStop) {
      Atomics.store(ints, kDone, seen);
      return;
    }
    results[slot] = handle(op, args);
    // Release: the result, and everything the command wrote, before the count the poster waits on.
    Atomics.store(ints, kDone, seen);
    Atomics.notify(ints, kDone);
  }
}

let lastYield = performance.now();

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => {
    lastYield = performance.now();
    resolve();
  }));
}

/** Main-thread side: post a command to a slot, and wait for it. */
export class Residents {
  readonly buffers: ResidentBuffers;
  readonly #ints: Int32Array;
  readonly #results: Float64Array;

  constructor(b: ResidentBuffers) {
    this.buffers = b;
    this.#ints = new Int32Array(b.slots);
    this.#results = new Float64Array(b.results);
  }

  /** Post `op` with `args` to slot `slot` (whose previous command is done). */
  post(slot: number, op: number, args: readonly number[] = []): void {
    const base = slot * kSlotInts;
    if (args.length > kResidentArgs) throw new RangeError(`resident command: ${args.length} arguments, at most ${kResidentArgs}`);
    Atomics.store(this.#ints, base + kOp, op);
    for (let i = 0; i < args.length; i++) Atomics.store(this.#ints, base + kArgs + i, args[i]);
    Atomics.add(this.#ints, base + kSeq, 1);
    Atomics.notify(this.#ints, base + kSeq);
  }

  /**
   * Resolves with the slot's result once its last posted command is done. The calling thread sleeps in
   * Atomics.wait for slices of kPosterSliceMs (a futex wake-up: a few µs, where Atomics.waitAsync's goes through
   * the event loop and costs tens), and between slices lets its event loop run: timers (a step's deadline) and
   * the message of a resident that failed or died.
   */
  async done(slot: number): Promise<number> {
    const base = slot * kSlotInts;
    const target = Atomics.load(this.#ints, base + kSeq);
    // The caller posts to every slot before it waits for any (the waits below block this thread): start
    // waiting only once the current synchronous run of posts is over.
    await null;
    for (;;) {
      const now = Atomics.load(this.#ints, base + kDone);
      if (now >= target) break;
      Atomics.wait(this.#ints, base + kDone, now, kPosterSliceMs);
      if (Atomics.load(this.#ints, base + kDone) >= target) break;
      await yieldToEventLoop();
    }
    // Steps that finish within a slice never leave the microtask queue: a loop of them would starve the event
    // loop (signals, stdout, timers). Give it a turn at least every kPosterSliceMs.
    if (performance.now() - lastYield > kPosterSliceMs) await yieldToEventLoop();
    return this.#results[slot];
  }

  /** A slot whose resident ended (its task failed) counts its pending commands as done, for the next resident. */
  settle(slot: number): void {
    const base = slot * kSlotInts;
    Atomics.store(this.#ints, base + kDone, Atomics.load(this.#ints, base + kSeq));
  }
}
