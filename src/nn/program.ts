// A replica's step as data: a flat list of phases, built once per shape before the first step (no
// allocation inside a step). A layer's forward or backward function pushes the phases it needs; each phase
// is run by every member of the replica's team with its place (member, members) and does that member's share
// of the work, cut the same way for every team size, so the bits never depend on how many threads run it.
// The members meet at a barrier after every phase: what one phase writes, the next may read.
//
//   const p = new Program();
//   p.within('block_0/ln_1', () => layerNormForward(p, k, out, mean, rstd, inp, gamma, beta, rows, C, 1e-5));
//   runSerial(p, 3);                       // tests: each phase for member 0, 1, 2 in turn
//   runTeam(p, team);                      // a pool thread: its share of each phase, then the barrier

import { partBoundary } from '../memory/layout.js';

/** One member's share of a phase. */
export type PhaseRun = (member: number, members: number) => void;

export interface Phase {
  /** Where it is in the model, for errors: `block_3/attn backward: …`. */
  readonly label: string;
  readonly run: PhaseRun;
}

/** Byte offset into the arena memory the kernels are bound to. */
export type Ptr = number;

export class Program {
  readonly phases: Phase[] = [];
  readonly #scopes: string[] = [];

  /** Label every phase `build` pushes with `name` (nested scopes join with '/'). */
  within(name: string, build: () => void): void {
    this.#scopes.push(name);
    try {
      build();
    } finally {
      this.#scopes.pop();
    }
  }

  /** Append a phase; `what` names it inside the current scope ("forward", "backward: weight gradient"). */
  push(what: string, run: PhaseRun): void {
    const scope = this.#scopes.join('/');
    this.phases.push({ label: scope === '' ? what : `${scope} ${what}`, run });
  }
}

/**
 * Member `member`'s part [start, end) of [0, total) when it is cut into `members` contiguous parts on
 * multiples of `unit` (the one split of shardtrain: memory/layout.ts partBoundary).
 */
export function memberSlice(total: number, member: number, members: number, unit = 1): [number, number] {
  return [partBoundary(total, member, members, unit), partBoundary(total, member + 1, members, unit)];
}

/** A phase's failure, said with where it happened. */
export class PhaseError extends Error {
  constructor(
    readonly label: string,
    cause: unknown,
  ) {
    const msg = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    super(`${label}: ${msg}`, { cause });
    this.name = 'PhaseError';
  }
}

/** Run every phase as each member in turn, on this thread: the team's arithmetic without threads (tests, the main thread). */
export function runSerial(program: Program, members = 1): void {
  for (const phase of program.phases) {
    try {
      for (let m = 0; m < members; m++) phase.run(m, members);
    } catch (err) {
      throw new PhaseError(phase.label, err);
    }
  }
}

/** What runTeam needs of a team: its place and a barrier (parallel/team.ts Team, or SoloTeam on one thread). */
export interface TeamLike {
  readonly member: number;
  readonly members: number;
  barrier(): void;
  abort(): void;
  /** A flag any member raises during a phase and every member reads after the next barrier. */
  markFailed(): void;
  failed(): boolean;
  clearFailed(): void;
}

/**
 * This thread's share of every phase, meeting the other members after each. A failure aborts the team (the
 * others stop at their next barrier) and is thrown with the phase's label.
 */
export function runTeam(program: Program, team: TeamLike): void {
  const { member, members } = team;
  for (const phase of program.phases) {
    try {
      phase.run(member, members);
    } catch (err) {
      team.abort();
      throw new PhaseError(phase.label, err);
    }
    team.barrier();
  }
}
