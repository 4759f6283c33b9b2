// parallelFor: run a kernel of your own over index ranges of shared buffers, on the same kind of pool the
// optimizer uses. The loop body is a module (functions cannot cross threads); each task gets one
// contiguous range, cut on `align` boundaries so that no two tasks share a cache line of float32 data.

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { partBoundary } from '../memory/layout.js';
import { checkThreads, createPool, type WorkerPool } from './pool.js';
import type { SharedBufferLike } from './worker-protocol.js';
import { settleAll } from './settle.js';

export interface ParallelForOptions {
  /** ES module whose default export is `(range: {start, end, part}, buffers, args) => result`. A path (relative to the working directory) or a file: URL. */
  module: string | URL;
  /** Indices to cover: n for [0, n), or [start, end). */
  range: number | readonly [number, number];
  /** Shared buffers the body reads and writes, by name (passed by handle, never copied). */
  buffers?: Readonly<Record<string, SharedBufferLike>>;
  /** Any structured-cloneable value, passed to every task. */
  args?: unknown;
  /** Pool to run on (an optimizer's `opt.pool`, or createPool()). Default: a pool made for this call and closed after. */
  pool?: WorkerPool;
  /** Threads of the temporary pool when no `pool` is given. Default: os.availableParallelism(). */
  threads?: number;
  /** Number of tasks (ranges). Default: the pool's thread count. */
  tasks?: number;
  /** Range boundaries fall on multiples of this (counted from start). Default 16: 64 bytes of float32. */
  align?: number;
}

function moduleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== 'string' || module.length === 0) throw new TypeError(`parallelFor: options.module must be a path or URL, got ${String(module)}`);
  if (module.startsWith('file:')) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

function checkRange(range: ParallelForOptions['range']): [number, number] {
  const [start, end] = typeof range === 'number' ? [0, range] : (range ?? []);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`parallelFor: options.range must be n >= 0 or [start, end] with 0 <= start <= end, got ${JSON.stringify(range)}`);
  }
  return [start, end];
}

/** Runs the body once per task, in parallel; resolves to the bodies' results in task order. */
export async function parallelFor<R = unknown>(options: ParallelForOptions): Promise<R[]> {
  const url = moduleUrl(options.module);
  const [start, end] = checkRange(options.range);
  const align = options.align ?? 16;
  if (!Number.isSafeInteger(align) || align < 1) throw new RangeError(`parallelFor: options.align must be a positive integer, got ${align}`);
  const buffers = options.buffers ?? {};
  for (const [name, b] of Object.entries(buffers)) {
    if (!(b instanceof SharedArrayBuffer) && !(b instanceof WebAssembly.Memory)) {
      throw new TypeError(`parallelFor: buffers.${name} must be a SharedArrayBuffer or shared WebAssembly.Memory (other buffers would be copied)`);
    }
  }
  const pool = options.pool ?? createPool({ threads: options.threads === undefined ? undefined : checkThreads(options.threads, 'parallelFor: options.threads') });
  try {
    const tasks = checkThreads(options.tasks ?? pool.threads, 'parallelFor: options.tasks');
    const runs: Promise<R>[] = [];
    for (let part = 0; part < tasks; part++) {
      const a = start + partBoundary(end - start, part, tasks, align);
      const b = start + partBoundary(end - start, part + 1, tasks, align);
      runs.push(pool.run<R>({ kind: 'for', module: url, start: a, end: b, part, buffers, args: options.args }));
    }
    return await settleAll(runs);
  } finally {
    if (!options.pool) await pool.close();
  }
}
