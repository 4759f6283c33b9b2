// What runs inside every pool thread. It builds its views of the shared buffers once, from workerData, and
// then answers small per-task messages by calling a kernel. workers/shard-worker.ts is only an entry point.

import { threadId } from 'node:worker_threads';
import { kGenerationField, viewControlBlock } from '../memory/control.js';
import { viewShard } from '../memory/shard-states.js';
import { loadKernels } from '../kernels/shard-kernels.js';
import { runPart, type StepContext } from './shard-tasks.js';
import { describeTask, kWorkerErrorPrefix } from './worker-protocol.js';
import type { CreateExtensionHandler, ExtensionHandler, ExtensionTask, ForTask, OptimizerInit, StepTask, WorkerInit, WorkerTask } from './worker-protocol.js';

/** The body of a parallelFor loop: the default export of the user's module. */
export type LoopBody = (range: { start: number; end: number; part: number }, buffers: Readonly<Record<string, unknown>>, args: unknown) => unknown;

// async: a kernel that cannot load fails the first task (with its context), not the thread's start-up.
async function buildStepContext(init: OptimizerInit): Promise<StepContext> {
  const { layout, memories, gradSlots, amsgrad } = init;
  return {
    layout,
    shards: layout.shards.map((range, i) => viewShard(range, memories[i], gradSlots, amsgrad)),
    control: viewControlBlock(init.control, layout.tensors.length, layout.totalSize),
    kernels: loadKernels(init.kernel),
  };
}

export function createWorkerRuntime(init: WorkerInit): (task: WorkerTask) => Promise<unknown> {
  const stepContext = init.optimizer ? buildStepContext(init.optimizer) : null;
  const failAt = init.optimizer?.failAt;
  const bodies = new Map<string, Promise<LoopBody>>();
  const extensions = new Map<string, Promise<ExtensionHandler>>();

  function extension(name: string): Promise<ExtensionHandler> {
    let handler = extensions.get(name);
    if (!handler) {
      const ext = init.extensions?.[name];
      if (!ext) return Promise.reject(new Error(`no worker extension named "${name}" in this pool`));
      handler = (async () => {
        const mod = (await import(ext.module)) as { createHandler?: CreateExtensionHandler };
        if (typeof mod.createHandler !== 'function') throw new TypeError(`worker extension ${ext.module} must export createHandler(data, env)`);
        return mod.createHandler(ext.data, { step: stepContext ? await stepContext : null });
      })();
      extensions.set(name, handler);
    }
    return handler;
  }

  async function runExtension(task: ExtensionTask): Promise<unknown> {
    return (await extension(task.extension))(task.payload);
  }

  async function runStep(task: StepTask): Promise<void> {
    if (stepContext === null) throw new Error('this pool was not created with optimizer buffers');
    const ctx = await stepContext;
    // Acquire: pairs with the coordinator's Atomics.add after it wrote this step's scalars, so the plain
    // Float64Array reads below see them.
    Atomics.load(ctx.control.ints, kGenerationField);
    if (failAt && failAt.phase === task.phase && failAt.part === task.part) throw new Error('injected failure (failAt)');
    runPart(ctx, task.phase, task.part, task.parts);
  }

  async function loadBody(module: string): Promise<LoopBody> {
    let body = bodies.get(module);
    if (!body) {
      body = import(module).then((m: { default?: unknown }) => {
        if (typeof m.default !== 'function') throw new TypeError(`parallelFor module ${module} must export a default function (range, buffers, args)`);
        return m.default as LoopBody;
      });
      bodies.set(module, body);
    }
    return body;
  }

  async function runFor(task: ForTask): Promise<unknown> {
    const body = await loadBody(task.module);
    return body({ start: task.start, end: task.end, part: task.part }, task.buffers, task.args);
  }

  return async function handle(task: WorkerTask): Promise<unknown> {
    try {
      if (task.kind === 'step') return await runStep(task);
      if (task.kind === 'for') return await runFor(task);
      return await runExtension(task);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // A task that serves many commands (parallel/resident.ts) names the one that failed.
      const label = (err as { taskLabel?: unknown } | null)?.taskLabel;
      throw new Error(`${kWorkerErrorPrefix}${threadId} (${typeof label === 'string' ? label : describeTask(task)}): ${msg}`, { cause: err });
    }
  };
}
