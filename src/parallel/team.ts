// A team: the threads that run one replica's step together, meeting at a barrier between the phases of the
// step (nn/program.ts). A piscina task costs ≈ 50 µs and a GPT step has hundreds of phases, so the members
// stay inside one task for the whole step and meet here instead: ≈ 0.5 µs when the last one arrives while
// the others still spin, a few µs once they sleep in Atomics.wait.
//
// The team's state is a few Int32 fields of a SharedArrayBuffer that every member views:
//   kArrived     members that have reached the current barrier
//   kGeneration  barriers completed so far; a waiter leaves when it moves
//   kAborted     set (≠ 0) by a failing member or by the coordinator: every wait throws from then on
//   kFailed      a flag any member may raise during a phase (a check that failed) and any member may read
//                after the next barrier; cleared between steps, or by one member between two barriers
// A failed member, or a thread that died, must never leave the others waiting for good: abort() wakes
// them, and a wait also looks at the flag every kWaitSliceMs while it sleeps.

/** Int32 fields of one team's block. */
const kArrived = 0;
const kGeneration = 1;
const kAborted = 2;
const kFailed = 3;
/** Int32s one team takes in its buffer: the fields above, padded to a 64-byte cache line. */
export const kTeamInts = 16;
export const kTeamBytes = kTeamInts * 4;

/** Loads of the generation before a waiter sleeps: covers the skew between members on phases of equal work. */
const kSpins = 2000;
/** A sleeping waiter looks at the abort flag at least this often (a coordinator that set it without notify). */
const kWaitSliceMs = 200;

/** What every TeamAbortedError says first (the message crosses threads; the class does not). */
export const kAbandonedMarker = 'the step was abandoned';

/** A team was aborted: a member failed (its own error reaches the caller) or the step was given up. */
export class TeamAbortedError extends Error {
  constructor(readonly code: number) {
    super(`${kAbandonedMarker} (${code === kAbortByCoordinator ? 'stopped by the coordinator' : `member ${code - 1} failed`})`);
    this.name = 'TeamAbortedError';
  }
}

/** Abort code the coordinator uses (a member m uses m + 1). */
export const kAbortByCoordinator = -1;

/** Allocate the blocks of `teams` teams (zeroed: nobody arrived, generation 0, not aborted). */
export function allocateTeams(teams: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, teams) * kTeamBytes);
}

export class Team {
  readonly #ints: Int32Array;

  /** The block of team `index` in `buffer` (allocateTeams), for a team of `members` threads; `member` is this thread's place. */
  constructor(
    buffer: SharedArrayBuffer,
    index: number,
    readonly member: number,
    readonly members: number,
  ) {
    if (!Number.isInteger(members) || members < 1 || !Number.isInteger(member) || member < 0 || member >= members) {
      throw new RangeError(`team: member ${member} of ${members} is not a place in the team`);
    }
    this.#ints = new Int32Array(buffer, index * kTeamBytes, kTeamInts);
  }

  /** Wait until every member has arrived. Throws TeamAbortedError once the team is aborted. */
  barrier(): void {
    const ints = this.#ints;
    if (this.members === 1) {
      this.#checkAborted();
      return;
    }
    const generation = Atomics.load(ints, kGeneration);
    this.#checkAborted();
    // Acquire/release: the Atomics operations order every member's plain writes of the phase before any
    // member's reads after the barrier (they are sequentially consistent in JS).
    if (Atomics.add(ints, kArrived, 1) === this.members - 1) {
      Atomics.store(ints, kArrived, 0);
      Atomics.add(ints, kGeneration, 1);
      Atomics.notify(ints, kGeneration);
      return;
    }
    for (let i = 0; i < kSpins; i++) {
      if (Atomics.load(ints, kGeneration) !== generation) return;
    }
    while (Atomics.load(ints, kGeneration) === generation) {
      this.#checkAborted();
      Atomics.wait(ints, kGeneration, generation, kWaitSliceMs);
    }
    this.#checkAborted();
  }

  /** Raise the team's flag (a check failed on this member's share); every member sees it after the next barrier. */
  markFailed(): void {
    Atomics.store(this.#ints, kFailed, 1);
  }

  /** Whether any member raised the flag before the last barrier. */
  failed(): boolean {
    return Atomics.load(this.#ints, kFailed) !== 0;
  }

  /** Lower the flag: one member only, between two barriers (nobody raises or reads it meanwhile). */
  clearFailed(): void {
    Atomics.store(this.#ints, kFailed, 0);
  }

  /** Give up the step: every member's wait (now or later) throws. `code`: kAbortByCoordinator or the failing member + 1. */
  abort(code: number = this.member + 1): void {
    abortTeam(this.#ints, code);
  }

  #checkAborted(): void {
    const code = Atomics.load(this.#ints, kAborted);
    if (code !== 0) throw new TeamAbortedError(code);
  }
}

function abortTeam(ints: Int32Array, code: number): void {
  Atomics.compareExchange(ints, kAborted, 0, code);
  // Wake every sleeper: each sees the flag, or a generation that moved, and stops waiting.
  Atomics.notify(ints, kGeneration);
}

/** The coordinator's side: abort team `index` (a member died or the step timed out). */
export function abortTeamAt(buffer: SharedArrayBuffer, index: number): void {
  abortTeam(new Int32Array(buffer, index * kTeamBytes, kTeamInts), kAbortByCoordinator);
}

/** The coordinator's side, between steps (no member inside): nobody arrived, not aborted, the flag down. */
export function resetTeamAt(buffer: SharedArrayBuffer, index: number): void {
  const ints = new Int32Array(buffer, index * kTeamBytes, kTeamInts);
  Atomics.store(ints, kArrived, 0);
  Atomics.store(ints, kAborted, 0);
  Atomics.store(ints, kFailed, 0);
}

/** A team of one, on the calling thread: barriers are no-ops, the flag is a field. */
export class SoloTeam {
  readonly member = 0;
  readonly members = 1;
  #failed = false;
  barrier(): void {}
  abort(): void {}
  markFailed(): void {
    this.#failed = true;
  }
  failed(): boolean {
    return this.#failed;
  }
  clearFailed(): void {
    this.#failed = false;
  }
}

/** Whether team `index` was aborted, and by whom (0: not aborted). */
export function teamAbortCode(buffer: SharedArrayBuffer, index: number): number {
  return Atomics.load(new Int32Array(buffer, index * kTeamBytes, kTeamInts), kAborted);
}
