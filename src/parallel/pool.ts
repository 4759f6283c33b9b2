// Every thread shardtrain starts lives in one of these: a piscina pool whose size is fixed for its life
// (minThreads = maxThreads, never idle-killed), each thread given the shared buffers once at start-up.

import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { describeTask, kWorkerErrorPrefix, type WorkerInit, type WorkerTask } from './worker-protocol.js';

const workerFile = fileURLToPath(new URL('../../workers/shard-worker.js', import.meta.url));

export interface PoolOptions {
  /** Worker threads. Default: os.availableParallelism(). */
  threads?: number;
  /**
   * V8 old-generation heap limit of each thread, in MB (worker `resourceLimits.maxOldGenerationSizeMb`).
   * A thread that runs out dies alone and its task fails, instead of the whole process aborting. Default: V8's.
   */
  workerMemoryMb?: number;
}

/** A pool thread ended (process.exit, out of memory, terminated) while running `task`. */
export class WorkerDiedError extends Error {
  constructor(
    readonly task: WorkerTask,
    cause: unknown,
  ) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    super(`a pool thread died while running ${describeTask(task)}: ${msg}`, { cause });
    this.name = 'WorkerDiedError';
  }
}

/** Below this a thread cannot even load tfjs; a smaller limit is a typo, not a choice. */
export const kMinWorkerMemoryMb = 32;

export function defaultThreads(): number {
  return availableParallelism();
}

export function checkThreads(threads: unknown, where = 'options.threads'): number {
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`${where} must be a positive integer, got ${String(threads)}`);
  }
  return threads;
}

export class WorkerPool {
  readonly threads: number;
  #piscina: Piscina<WorkerTask, unknown> | null;
  #closing: Promise<void> | null = null;

  /** @internal use createPool() or an optimizer's `pool`. */
  constructor(threads: number, init: WorkerInit = {}, workerMemoryMb?: number) {
    this.threads = checkThreads(threads);
    if (workerMemoryMb !== undefined) checkWorkerMemory(workerMemoryMb);
    this.#piscina = new Piscina({
      filename: workerFile,
      minThreads: threads,
      maxThreads: threads,
      // piscina's default (0) kills idle workers and would drop the buffers they were given at start.
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData: init,
      ...(workerMemoryMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: workerMemoryMb } }),
    });
    // piscina emits 'error' only for a thread that failed while running no task (its tasks' callers hear of
    // the others); without a listener that event would throw on the main thread and take the process down.
    this.#piscina.on('error', () => undefined);
  }

  get closed(): boolean {
    return this.#piscina === null;
  }

  /** Run one task on whichever thread is free. */
  run<R>(task: WorkerTask): Promise<R> {
    if (this.#piscina === null) return Promise.reject(new Error('the worker pool is closed'));
    return (this.#piscina.run(task) as Promise<R>).catch((err: unknown) => {
      // Errors thrown by task code already say which thread and task; a thread that died (process.exit,
      // out of memory) is reported by piscina alone, so say what it was running.
      const msg = err instanceof Error ? err.message : String(err);
      if (msg.startsWith(kWorkerErrorPrefix)) throw err;
      throw new WorkerDiedError(task, err);
    });
  }

  /** End every thread. Safe to call more than once; never throws. */
  close(): Promise<void> {
    const p = this.#piscina;
    if (p === null) return this.#closing ?? Promise.resolve();
    this.#piscina = null;
    this.#closing = p.destroy().catch(() => undefined);
    return this.#closing;
  }
}

export function checkWorkerMemory(mb: unknown, where = 'options.workerMemoryMb'): number {
  if (typeof mb !== 'number' || !Number.isInteger(mb) || mb < kMinWorkerMemoryMb) {
    throw new RangeError(`${where} must be an integer >= ${kMinWorkerMemoryMb} (MB), got ${String(mb)}`);
  }
  return mb;
}

/** A pool for parallelFor loops of your own. */
export function createPool(options: PoolOptions = {}): WorkerPool {
  return new WorkerPool(checkThreads(options.threads ?? defaultThreads()), {}, options.workerMemoryMb);
}
