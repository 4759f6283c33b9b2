// Watching the gradient tasks of one step, so that no worker can hang or silently break a run:
//   - a small shared table in which each task writes the id of the thread running it (so a thread that dies,
//     or never answers, can be named: piscina reports neither);
//   - an optional deadline (stepTimeoutSec) after which the step fails, naming the tasks that have not
//     answered; the caller then destroys the pool, which terminates even a thread stuck in an endless loop.
//   - a hook called as soon as one task fails (before the others settle): an engine whose tasks wait for each
//     other (a team at a barrier) uses it to release the others.

import { threadId } from 'node:worker_threads';
import { WorkerDiedError } from '../parallel/pool.js';
import { kAbandonedMarker } from '../parallel/team.js';

/** Worker side: record that this thread started task `task` of the current step. */
export function markTaskStarted(table: SharedArrayBuffer, task: number): void {
  // Diagnostic only (read after a failure or a timeout): atomicity is all that is needed, no ordering.
  Atomics.store(new Int32Array(table), task, threadId);
}

/** `replica 1, step 7`: how errors name a replica task (step is 1-based, as in the logs). */
export function replicaLabel(replica: number, step: number): string {
  return `replica ${replica}, step ${step}`;
}

/** A task as the guard sees it: who it is in messages (`replica 1`, `replica 0, thread 2 of 2`). */
export interface GuardedTask {
  readonly who: string;
}

export class StepGuard {
  /** Int32 per task: thread id running it this step, 0 while not started. */
  readonly table: SharedArrayBuffer;
  readonly #threads: Int32Array;

  constructor(
    readonly tasks: number,
    /** Milliseconds, or undefined for no deadline. */
    readonly timeoutMs: number | undefined,
    /** Extra words for a thread that died (e.g. the heap limit in force). */
    readonly deathHint = '',
  ) {
    this.table = new SharedArrayBuffer(4 * tasks);
    this.#threads = new Int32Array(this.table);
  }

  #thread(r: number, unknown: string): string {
    const id = Atomics.load(this.#threads, r);
    return id === 0 ? unknown : `worker thread ${id}`;
  }

  /**
   * Run every task (`run(task, index)`; index i writes slot i of the table) and wait for all of them (no task
   * may still be writing its gradient slot when the caller hears of a failure). Rejects with a one-line error
   * naming thread, task and step. `onFailure` runs once, at the first failure, while the others still run.
   */
  async all<T, K extends GuardedTask>(step: number, tasks: readonly K[], run: (task: K, index: number) => Promise<T>, onFailure?: () => void): Promise<T[]> {
    if (tasks.length > this.tasks) throw new RangeError(`step guard: ${tasks.length} tasks, table for ${this.tasks}`);
    this.#threads.fill(0); // before the tasks are posted: the post orders this write before theirs
    let failed = false;
    const runs = tasks.map((task, i) =>
      run(task, i).catch((err: unknown) => {
        if (!failed) {
          failed = true;
          onFailure?.();
        }
        throw err instanceof WorkerDiedError ? this.#died(task, i, step, err) : err;
      }),
    );
    return withDeadline(runs, this.timeoutMs, (missing) => this.#timedOut(step, missing.map((i) => [tasks[i], i] as const)));
  }

  #died(task: GuardedTask, i: number, step: number, err: WorkerDiedError): Error {
    const cause = err.cause instanceof Error ? err.cause.message : String(err.cause);
    return new Error(`${this.#thread(i, 'a worker thread (before the task started)')} died running ${task.who}, step ${step}: ${cause}${this.deathHint}`, { cause: err });
  }

  #timedOut(step: number, missing: readonly (readonly [GuardedTask, number])[]): string {
    const who = missing.map(([task, i]) => `${task.who} (${this.#thread(i, 'not started')})`);
    return `step ${step}: no answer within ${(this.timeoutMs ?? 0) / 1000} s (stepTimeoutSec) from ${who.join(', ')}; the worker threads were stopped`;
  }
}

/**
 * Wait for `runs` (settled all, as settleAll) or fail after `timeoutMs` with `describe(unanswered)`, where
 * unanswered lists the indices of the runs still pending. No deadline when timeoutMs is undefined.
 */
export async function withDeadline<T>(runs: readonly Promise<T>[], timeoutMs: number | undefined, describe: (unanswered: number[]) => string): Promise<T[]> {
  const done = runs.map(() => false);
  const settled = Promise.allSettled(runs.map((run, k) => run.finally(() => (done[k] = true))));
  let timer: NodeJS.Timeout | undefined;
  const deadline =
    timeoutMs === undefined
      ? null
      : new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StepTimeoutError(describe(done.flatMap((d, k) => (d ? [] : [k]))))), timeoutMs);
        });
  try {
    const results = await (deadline ? Promise.race([settled, deadline]) : settled);
    // A member of a team that stopped because another failed says only that: report the other's error.
    const rejected = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    const failed = rejected.find((x) => !isAbandoned(x.reason)) ?? rejected[0];
    if (failed) throw failed.reason;
    return results.map((x) => (x as PromiseFulfilledResult<T>).value);
  } finally {
    clearTimeout(timer);
  }
}

/** An error that only says the task stopped because its team was given up (parallel/team.ts TeamAbortedError, through a worker). */
export function isAbandoned(err: unknown): boolean {
  return err instanceof Error && err.message.includes(kAbandonedMarker);
}

/** The step's deadline passed: the pool must be destroyed (a thread may be stuck for good). */
export class StepTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepTimeoutError';
  }
}
