// ShardedAdamW: validates, owns the shared buffers, and runs each step as two phases over the flat index
// space (norm: partial sums of squares, only when clipping or the non-finite check needs them; update: the
// fused replica mean + AdamW). Phases run inline on the calling thread or as one task per thread on the pool;
// both paths call the same kernels over the same ranges, so they give the same bits.

import { createControlBlock, kGenerationField, type ControlBlock } from '../memory/control.js';
import { computeLayout, maxShardFloats, type Layout } from '../memory/layout.js';
import { allocateShards, stateNamesFor, type ShardStates, type StateName } from '../memory/shard-states.js';
import { firstNonFinite, tensorViews, type TensorView } from '../memory/tensor-views.js';
import type { ConventionKnobs, ConventionName } from '../optim/conventions.js';
import { defaultKernel, loadKernels, type KernelName } from '../kernels/shard-kernels.js';
import { createSchedule, type Schedule } from '../optim/schedules.js';
import { clipScaleFor, setClipScale, writeStepScalars, type StepConstants } from '../optim/step-scalars.js';
import { resolveOptions, type OptimizerOptions, type ResolvedOptions } from './optimizer-options.js';
import { WorkerPool } from './pool.js';
import { allSlotsChecked, nextGradEpoch, stampSlot, writeChecked } from './checked-writes.js';
import { checkStateDict, type OptimizerStateDict } from './state-dict.js';
import { settleAll } from './settle.js';
import { runPart, type StepContext, type StepPhase } from './shard-tasks.js';
import type { StepTask } from './worker-protocol.js';

/**
 * Below this many parameters a step runs inline on the calling thread: two pool round trips (50–150 µs
 * each) cost more than the work saved by the second thread. `npm run bench` sweeps sizes from 16 k to 4 M;
 * here the pool started to win between 524 k and 1 M params (see README, Performance).
 */
export const kInlineBelowParams = 1 << 20;

export interface StepResult {
  /** globalStep after this call (unchanged when skipped). */
  readonly step: number;
  /** lr used by this step. */
  readonly lr: number;
  /**
   * L2 norm of the (value-clipped) replica-mean gradient, before norm clipping; NaN when not computed (no
   * clipping, and either onNonFinite 'ignore' or gradients already checked as they were written).
   */
  readonly gradNorm: number;
  /** Factor the gradient was multiplied by (1 unless norm-clipped). */
  readonly clipScale: number;
  /** True when a non-finite gradient made the step a no-op (onNonFinite: 'skip'). */
  readonly skipped: boolean;
}

export class NonFiniteGradientError extends Error {
  constructor(
    message: string,
    readonly tensor: string,
    readonly step: number,
  ) {
    super(message);
    this.name = 'NonFiniteGradientError';
  }
}

export type GradientsInput = Readonly<Record<string, ArrayLike<number>>>;

export class ShardedAdamW {
  readonly layout: Layout;
  readonly convention: ConventionName;
  readonly knobs: ConventionKnobs;
  readonly schedule: Schedule;
  /** λ's schedule: μ_t multiplies λ at step t (the lr schedule itself for 'lr'; constant 1 by default). */
  readonly weightDecaySchedule: Schedule;
  readonly threads: number;
  readonly kernel: KernelName;
  /** Live views of the parameters. */
  readonly params: Readonly<Record<string, TensorView>>;
  /** Live views of Adam's moments (and v_max with AMSGrad), for checkpoints and inspection. */
  readonly state: Readonly<{ m: Readonly<Record<string, TensorView>>; v: Readonly<Record<string, TensorView>>; vmax: Readonly<Record<string, TensorView>> | null }>;
  readonly options: ResolvedOptions;
  #globalStep: number;
  #lr = Number.NaN;
  #skipped = 0;
  #stepping = false;
  #broken: Error | null = null;
  #closed = false;
  readonly #shards: ShardStates[];
  readonly #control: ControlBlock;
  readonly #context: StepContext;
  readonly #constants: StepConstants;
  readonly #inline: boolean;
  readonly #tasks: Record<StepPhase, StepTask[]>;
  readonly #gradViews: Array<Readonly<Record<string, TensorView>>> = [];
  /** Slots whose live views were handed out (gradSlot, grads): their checked stamps do not count. */
  readonly #exposed: boolean[] = [];
  #pool: WorkerPool | null = null;

  /** @internal use createOptimizer(). `initial` is copied in and not kept. */
  constructor(o: ResolvedOptions, initial: readonly ArrayLike<number>[], kernel: KernelName, kernels: StepContext['kernels']) {
    this.options = o;
    this.convention = o.convention;
    this.knobs = o.knobs;
    this.threads = o.threads;
    this.kernel = kernel;
    this.schedule = createSchedule(o.schedule);
    this.weightDecaySchedule = o.weightDecaySchedule === 'lr' ? this.schedule : createSchedule(o.weightDecaySchedule);
    this.#globalStep = o.startStep;
    const limit = o.maxShardParams ?? maxShardFloats(o.gradSlots, o.knobs.amsgrad);
    this.layout = computeLayout(o.tensors, limit);
    this.#shards = allocateShards(this.layout, o.gradSlots, o.knobs.amsgrad);
    this.#control = createControlBlock(this.layout.tensors.length, this.layout.totalSize);
    this.#context = { layout: this.layout, shards: this.#shards, control: this.#control, kernels };
    this.params = tensorViews(this.layout, this.#shards, 'params');
    const view = (r: StateName) => tensorViews(this.layout, this.#shards, r);
    this.state = Object.freeze({ m: view('m'), v: view('v'), vmax: o.knobs.amsgrad ? view('vmax') : null });
    o.tensors.forEach(({ name }, i) => this.params[name].set(initial[i]));
    this.#constants = {
      knobs: o.knobs,
      beta1: o.betas[0],
      beta2: o.betas[1],
      eps: o.eps,
      clipValue: o.clipValue ?? Number.POSITIVE_INFINITY,
      gradSlots: o.gradSlots,
      weightDecay: Float64Array.from(o.decayTable, (e) => e.weightDecay),
      lrMultiplier: Float64Array.from(o.decayTable, (e) => e.lrMultiplier),
      peakMultiplier: o.peakMultiplier,
    };
    this.#inline = o.dispatch === 'inline' || (o.dispatch === 'auto' && (o.threads === 1 || this.layout.totalSize < kInlineBelowParams));
    const tasks = (phase: StepPhase): StepTask[] =>
      Array.from({ length: o.threads }, (_, part) => ({ kind: 'step', phase, part, parts: o.threads, step: 0 }));
    this.#tasks = { norm: tasks('norm'), update: tasks('update') };
  }

  /** True when steps run on the calling thread (small models, or threads: 1), not on the pool. */
  get runsInline(): boolean {
    return this.#inline;
  }

  /** Steps completed. The next step() uses schedule(globalStep) and bias correction t = globalStep + 1. */
  get globalStep(): number {
    return this.#globalStep;
  }

  /** lr used by the last step (NaN before the first). */
  get lr(): number {
    return this.#lr;
  }

  /** Steps skipped or refused because of a non-finite gradient. */
  get skippedSteps(): number {
    return this.#skipped;
  }

  /** Per-tensor weight decay and lr multiplier after exclusion rules and groups. */
  get decayTable(): ResolvedOptions['decayTable'] {
    return this.options.decayTable;
  }

  /**
   * Live views of gradient slot 0: write gradients here, then step(). Gradients written this way are
   * scanned for NaN/Inf by the step (setGrads() and step(grads) check them as they copy, for free).
   */
  get grads(): Readonly<Record<string, TensorView>> {
    return this.gradSlot(0);
  }

  /**
   * Gradient slot r's live views. Once they are handed out, the slot's checked stamps (see
   * checked-writes.ts) no longer count: anything may be written through them at any time, so every step
   * scans the slot for NaN/Inf.
   */
  gradSlot(r: number): Readonly<Record<string, TensorView>> {
    this.#checkSlot(r);
    this.#exposed[r] = true;
    return this.#slotViews(r);
  }

  #slotViews(r: number): Readonly<Record<string, TensorView>> {
    return (this.#gradViews[r] ??= tensorViews(this.layout, this.#shards, 'grads', r));
  }

  /** The first NaN/±Inf in gradient slot r, or null (read-only: the slot's stamps keep counting). */
  firstNonFiniteGradient(r: number): { tensor: string; index: number } | null {
    this.#checkSlot(r);
    for (const [tensor, view] of Object.entries(this.#slotViews(r))) {
      const index = firstNonFinite(view);
      if (index >= 0) return { tensor, index };
    }
    return null;
  }

  #checkSlot(r: number): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.options.gradSlots) {
      throw new RangeError(`gradient slot must be an integer in [0, ${this.options.gradSlots}), got ${r}`);
    }
  }

  /** The shared memories, one per shard (for replicas that read params directly). */
  get memories(): readonly WebAssembly.Memory[] {
    return this.#shards.map((s) => s.memory);
  }

  /** The optimizer's thread pool (started on first use); run your own parallelFor loops on it. */
  get pool(): WorkerPool {
    this.#assertOpen();
    this.#pool ??= new WorkerPool(this.threads, {
      optimizer: {
        layout: this.layout,
        memories: this.memories,
        control: this.#control.buffer,
        gradSlots: this.options.gradSlots,
        amsgrad: this.knobs.amsgrad,
        kernel: this.kernel,
        failAt: this.options.failAt,
      },
      extensions: this.options.workerExtensions,
    }, this.options.workerMemoryMb);
    return this.#pool;
  }

  /**
   * Copy named gradients into slot `slot`, checking every name and length before writing any. The values are
   * checked for NaN/Inf as they are copied: when every tensor of the slot was given and all are finite, the
   * next step needs no separate scan of that slot.
   */
  setGrads(grads: GradientsInput, slot = 0): void {
    this.#checkSlot(slot);
    if (grads === null || typeof grads !== 'object') throw new TypeError(`gradients must be an object of named arrays, got ${String(grads)}`);
    const index = new Map(this.layout.tensors.map((t) => [t.name, t]));
    for (const [name, g] of Object.entries(grads)) {
      const t = index.get(name);
      if (t === undefined) throw new RangeError(`gradient for unknown tensor "${name}" (the model has ${this.layout.tensors.length} tensors)`);
      if (g === null || typeof g !== 'object' || typeof g.length !== 'number') throw new TypeError(`gradient for "${name}" must be an array, got ${String(g)}`);
      if (g.length !== t.size) throw new RangeError(`gradient for "${name}" has ${g.length} elements, expected ${t.size}`);
    }
    let checked = Object.keys(grads).length === this.layout.tensors.length;
    for (const [name, g] of Object.entries(grads)) checked = writeChecked(this.#context, slot, index.get(name)!.index, g) && checked;
    stampSlot(this.#control, slot, checked);
  }

  /** Live views of one state (params, m, v or v_max), by tensor name. */
  stateViews(state: StateName): Readonly<Record<string, TensorView>> {
    if (state === 'params') return this.params;
    const views = this.state[state];
    if (views === null) throw new RangeError('this optimizer keeps no v_max (amsgrad is off)');
    return views;
  }

  /** The states a checkpoint holds: params, m, v, and v_max with AMSGrad. */
  get stateNames(): readonly StateName[] {
    return stateNamesFor(this.knobs.amsgrad);
  }

  /** Copies of the step count, params, m, v (and v_max), by tensor name. */
  stateDict(): OptimizerStateDict {
    const copy = (state: StateName) => Object.fromEntries(this.layout.tensors.map(({ name }) => [name, this.stateViews(state)[name].slice()]));
    return {
      step: this.#globalStep,
      params: copy('params'),
      m: copy('m'),
      v: copy('v'),
      ...(this.knobs.amsgrad ? { vmax: copy('vmax') } : {}),
    };
  }

  /**
   * Replace the step count and every state with `dict`'s (as torch's `load_state_dict`). Every name, length
   * and value is checked before anything is written: a bad dict changes nothing.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    this.#assertOpen();
    if (this.#stepping) throw new Error('loadStateDict() called while a step is running');
    checkStateDict(dict, this.layout.tensors, this.knobs.amsgrad);
    for (const state of this.stateNames) {
      const views = this.stateViews(state);
      for (const { name } of this.layout.tensors) views[name].set(dict[state]![name]);
    }
    this.#globalStep = dict.step;
    this.#lr = Number.NaN;
  }

  /**
   * One AdamW step at globalStep with the mean of the gradient slots (after optionally copying `grads`
   * into slot 0). On a non-finite gradient nothing is written: params, m, v and globalStep stay as they were.
   */
  async step(grads?: GradientsInput): Promise<StepResult> {
    this.#assertOpen();
    if (this.#stepping) throw new Error('step() called while another step is running: await each step before the next');
    this.#stepping = true;
    try {
      if (grads !== undefined) this.setGrads(grads);
      return await this.#step();
    } finally {
      // Applied, skipped or failed, the step has consumed this round of gradients.
      nextGradEpoch(this.#control);
      this.#stepping = false;
    }
  }

  async #step(): Promise<StepResult> {
    const t = this.#globalStep;
    const eta = this.schedule.multiplierAt(t);
    const lrT = this.options.lr * eta;
    const scalars = this.#control.scalars;
    writeStepScalars(scalars, this.#constants, t + 1, lrT, eta, this.weightDecaySchedule.multiplierAt(t));

    let gradNorm = Number.NaN;
    let clipScale = 1;
    // The norm phase is needed to clip, or to find NaN/Inf in slots that were not checked as they were written.
    const checked = allSlotsChecked(this.#control, this.options.gradSlots) && !this.#exposed.includes(true);
    const needsScan = this.options.onNonFinite !== 'ignore' && !checked;
    if (this.options.clipGlobalNorm !== undefined || needsScan) {
      await this.#run('norm', t + 1);
      let sumSquares = 0;
      const base = this.#control.partialsBase;
      for (let c = 0; c < this.#control.chunkCount; c++) sumSquares += scalars[base + c];
      gradNorm = Math.sqrt(sumSquares);
      if (!Number.isFinite(gradNorm) && this.options.onNonFinite !== 'ignore') {
        this.#skipped++;
        if (this.options.onNonFinite === 'skip') return { step: t, lr: lrT, gradNorm, clipScale: 1, skipped: true };
        throw this.#nonFiniteError(t + 1);
      }
      if (this.options.clipGlobalNorm !== undefined) clipScale = clipScaleFor(gradNorm, this.options.clipGlobalNorm);
    }
    setClipScale(scalars, clipScale);
    await this.#run('update', t + 1);
    this.#globalStep = t + 1;
    this.#lr = lrT;
    return { step: t + 1, lr: lrT, gradNorm, clipScale, skipped: false };
  }

  async #run(phase: StepPhase, step: number): Promise<void> {
    if (this.#inline) {
      runPart(this.#context, phase, 0, 1);
      return;
    }
    // Release: every plain write of this step's scalars happens before this add; workers load the field
    // (acquire) before reading them.
    Atomics.add(this.#control.ints, kGenerationField, 1);
    const pool = this.pool;
    const tasks = this.#tasks[phase];
    for (let k = 0; k < tasks.length; k++) (tasks[k] as { step: number }).step = step;
    try {
      await settleAll(tasks.map((task) => pool.run<void>(task)));
    } catch (err) {
      if (phase === 'update') {
        // Other parts completed: the parameters are now a mix of two steps, so refuse to go on.
        this.#broken = new Error(`step ${step} failed in a worker after some shards were updated; restore from a checkpoint: ${(err as Error).message}`);
        throw this.#broken;
      }
      throw err;
    }
  }

  #nonFiniteError(step: number): NonFiniteGradientError {
    const slots = Array.from({ length: this.options.gradSlots }, (_, r) => this.#slotViews(r));
    for (const { name } of this.layout.tensors) {
      for (let r = 0; r < slots.length; r++) {
        const g = slots[r][name];
        const i = firstNonFinite(g);
        if (i >= 0) {
          return new NonFiniteGradientError(
            `non-finite gradient in tensor "${name}" (element ${i} of slot ${r} is ${g.at(i)}) at step ${step}; the step was not applied`,
            name,
            step,
          );
        }
      }
    }
    return new NonFiniteGradientError(`non-finite gradient norm at step ${step}; the step was not applied`, '', step);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the optimizer is closed');
    if (this.#broken) throw this.#broken;
  }

  /** Ends every thread. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool;
    this.#pool = null;
    if (pool) await pool.close();
  }
}

/** Validate options, allocate the sharded states, copy the initial params in. Threads start on first use. */
export async function createOptimizer(options: OptimizerOptions): Promise<ShardedAdamW> {
  const { options: o, initial } = resolveOptions(options);
  const kernel = o.kernel === 'auto' ? defaultKernel() : o.kernel;
  const opt = new ShardedAdamW(o, initial, kernel, loadKernels(kernel));
  if (!opt.runsInline) void opt.pool; // start the threads now, not inside the first step
  return opt;
}
