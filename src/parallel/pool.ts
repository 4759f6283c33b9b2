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
}

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
  constructor(threads: number, init: WorkerInit = {}) {
    this.threads = checkThreads(threads);
    this.#piscina = new Piscina({
      filename: workerFile,
      minThreads: threads,
      maxThreads: threads,
      // piscina's default (0) kills idle workers and would drop the buffers they were given at start.
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData: init,
    });
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
      throw new Error(`a pool thread died while running ${describeTask(task)}: ${msg}`, { cause: err });
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

/** A pool for parallelFor loops of your own. */
export function createPool(options: PoolOptions = {}): WorkerPool {
  return new WorkerPool(checkThreads(options.threads ?? defaultThreads()));
}
