// What crosses the thread boundary: the start-up data (every shared buffer, once) and the small per-task
// messages. Everything here is structured-cloneable; shared memories are passed by handle, not copied.

import type { Layout } from '../memory/layout.js';
import type { KernelName } from '../kernels/shard-kernels.js';
import type { StepContext, StepPhase } from './shard-tasks.js';

export interface OptimizerInit {
  readonly layout: Layout;
  readonly memories: readonly WebAssembly.Memory[];
  readonly control: SharedArrayBuffer;
  readonly gradSlots: number;
  readonly amsgrad: boolean;
  readonly kernel: KernelName;
  /** @internal test hook: throw in this phase on this part, to prove errors reach step(). */
  readonly failAt?: { readonly phase: StepPhase; readonly part: number };
}

/**
 * A worker extension: a module (file: URL) whose `createHandler(data, env)` is called once per thread at
 * start-up and then answers every `{ kind: 'ext', extension: name }` task. The trainer's replicas use this
 * to live in the optimizer's threads without the optimizer knowing about models.
 */
export interface ExtensionInit {
  readonly module: string;
  readonly data: unknown;
}

export interface WorkerInit {
  readonly optimizer?: OptimizerInit;
  readonly extensions?: Readonly<Record<string, ExtensionInit>>;
}

/** What an extension's handler gets besides its own data: the optimizer's views, when the pool has them. */
export interface ExtensionEnv {
  readonly step: StepContext | null;
}

export type ExtensionHandler = (payload: unknown) => unknown;
export type CreateExtensionHandler = (data: unknown, env: ExtensionEnv) => ExtensionHandler | Promise<ExtensionHandler>;

export interface ExtensionTask {
  readonly kind: 'ext';
  readonly extension: string;
  readonly payload: unknown;
  /** What this task is in the caller's words (`replica 1, step 7`), for error messages. */
  readonly label?: string;
}

export interface StepTask {
  readonly kind: 'step';
  readonly phase: StepPhase;
  readonly part: number;
  readonly parts: number;
  /** The step being run, for error messages. */
  readonly step: number;
}

export type SharedBufferLike = SharedArrayBuffer | WebAssembly.Memory;

export interface ForTask {
  readonly kind: 'for';
  /** file: URL of the user's kernel module. */
  readonly module: string;
  readonly start: number;
  readonly end: number;
  readonly part: number;
  readonly buffers: Readonly<Record<string, SharedBufferLike>>;
  readonly args: unknown;
}

export type WorkerTask = StepTask | ForTask | ExtensionTask;

/** A task in words, for error messages from either side of the thread boundary. */
export function describeTask(task: WorkerTask): string {
  switch (task.kind) {
    case 'step':
      return `step ${task.step}, part ${task.part}/${task.parts}`;
    case 'for':
      return `parallelFor ${task.module} [${task.start}, ${task.end})`;
    case 'ext':
      return task.label ?? `extension ${task.extension}`;
  }
}

/** Prefix of every error a worker reports about its own task. */
export const kWorkerErrorPrefix = 'worker thread ';
