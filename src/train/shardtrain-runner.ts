// One replica of a built-in model on shardtrain's engine, as one thread sees it: the kernels bound to the
// replica's arena, the programs of its passes (built once per shape), and the engine's own phases around the
// model's: the batch gathered into the arena, the parameters copied in from the shard memories, the
// gradients handed off to the replica's slot group by group. A pool thread runs it as one member of the
// replica's team (runTeam); the main thread runs it alone (members = 1) for `shardtrain sample`.
//
// Which member touches which bytes: every engine phase cuts its range with memberSlice, on 16-float units
// for the copies (no two members share a cache line of the destination).

import { kCheckedBound, type SlotWriter } from '../parallel/checked-writes.js';
import type { SimdFlavor } from '../kernels/wasm-modules.js';
import { createKernels, type Kernels } from '../nn/kernels.js';
import { memberSlice, Program, runSerial, runTeam, type TeamLike } from '../nn/program.js';
import { SoloTeam } from '../parallel/team.js';
import type { EngineModel, PassAddresses, PassKind, PassShape } from '../models/engine-model.js';
import { isTokenWindows, type ExampleSet } from '../models/model-module.js';
import type { ArenaPlan } from './memory-plan.js';

/** Floats handed off, then checked, at a time: 64 KiB, so the check reads from L2. */
const kPieceFloats = 16384;
const kCopyUnit = 16;

/** How a flush treats the replica's gradient slot. */
export type FlushMode =
  /** slot = staged gradient (the first or only micro-batch) */
  | 'copy'
  /** slot += staged gradient (later micro-batches) */
  | 'add'
  /** nothing written: only whether every staged value is finite (probing one example) */
  | 'scan';

/** A pass's hand-off: its mode, and whether the values are checked for NaN/Inf as they go. */
export interface Flush {
  readonly mode: FlushMode;
  readonly check: boolean;
}
const kCopyChecked: Flush = { mode: 'copy', check: true };

/** The batch a pass gathers: examples `indices` of `set` (token windows cut here, as data-order.ts does). */
interface PassBatch {
  set: ExampleSet;
  indices: ArrayLike<number>;
}

/** A run of a gradient group: `length` floats from the arena at `src` to a shard's slot at `shardStart`. */
interface FlushRun {
  readonly src: number;
  readonly shard: number;
  readonly shardStart: number;
  readonly length: number;
  /** Floats of the group before this run. */
  readonly before: number;
}

/** @internal test hook: make the phases whose label includes `phase` fail for `member` at global batch `batch`. */
export interface EngineFault {
  readonly phase: string;
  readonly member: number;
  readonly batch: number;
  readonly how: 'trap' | 'exit';
}

export interface RunnerTarget {
  /** The optimizer's views (a pool thread's step context), for the copy-in and the hand-off. */
  readonly writer: SlotWriter;
  /** The replica's gradient slot. */
  readonly slot: number;
}

export class ReplicaRunner {
  readonly model: EngineModel;
  readonly plan: ArenaPlan;
  readonly memory: WebAssembly.Memory;
  readonly kernels: Kernels;
  readonly #f32: Float32Array;
  readonly #i32: Int32Array;
  readonly #programs = new Map<string, Program>();
  readonly #target: RunnerTarget | null;
  #batch: PassBatch | null = null;
  #flushMode: FlushMode = 'copy';
  /** Check the slot's values as they are handed off (the last micro-batch). */
  #check = true;
  /** The team of the pass running now: a failed check raises its flag. */
  #team: TeamLike | null = null;
  #flushRuns: FlushRun[][] | null = null;
  /** Passes this thread has run (its share of them): what `info` reports, so tests can see which engine worked. */
  passes = 0;

  constructor(model: EngineModel, plan: ArenaPlan, memory: WebAssembly.Memory, flavor: SimdFlavor, target: RunnerTarget | null, fault: EngineFault | null = null) {
    this.#fault = fault;
    this.model = model;
    this.plan = plan;
    this.memory = memory;
    this.#target = target;
    this.#f32 = new Float32Array(memory.buffer);
    this.#i32 = new Int32Array(memory.buffer);
    const scratchBase = plan.layouts.train.at('scratch');
    const perMember = plan.scratchBytes;
    const scratchOf = (kind: PassKind) => plan.layouts[kind].at('scratch');
    // The scratch slot sits after each pass's own slots, so its place depends on the pass: the kernels ask
    // for the current pass's.
    let currentScratch = scratchBase;
    this.#setScratch = (kind) => (currentScratch = scratchOf(kind));
    this.kernels = createKernels(memory, flavor, (member: number) => currentScratch + member * perMember, perMember);
  }

  readonly #setScratch: (kind: PassKind) => void;

  /** Typed views of the arena (the memory never grows: maximum = initial). */
  get f32(): Float32Array {
    return this.#f32;
  }

  get i32(): Int32Array {
    return this.#i32;
  }

  /** The program of a pass of this shape (built on first use). */
  program(shape: PassShape): Program {
    const key = `${shape.kind}/${shape.batch}/${shape.tokens}/${shape.lossScale}`;
    let p = this.#programs.get(key);
    if (p === undefined) {
      p = this.#build(shape);
      this.#programs.set(key, p);
    }
    return p;
  }

  #addresses(kind: PassKind): PassAddresses {
    const layout = this.plan.layouts[kind];
    const base = this.plan.paramBase;
    const offsets = tensorOffsets(this.model);
    return {
      param: (t) => base + 4 * offsets[t],
      grad: (t) => this.plan.gradHome[t],
      slot: (name) => layout.at(`model.${name}`),
      inputs: layout.at('inputs'),
      targets: layout.at('targets'),
      losses: layout.at('losses'),
      logits: layout.at('logits'),
    };
  }

  #build(shape: PassShape): Program {
    const p = new Program();
    const at = this.#addresses(shape.kind);
    if (shape.kind !== 'sample') p.within('batch', () => p.push('gather', (m, n) => this.#gatherPart(at, shape, m, n)));
    this.model.build(p, this.kernels, at, shape, { flush: (group) => p.within('gradients', () => p.push(`hand-off of group ${group}`, (m, n) => this.#flushPart(group, m, n))) });
    const fault = this.#fault;
    if (fault !== null) {
      p.phases.forEach((phase, i) => {
        if (!phase.label.includes(fault.phase)) return;
        const run = phase.run;
        p.phases[i] = { label: phase.label, run: (m, n) => (this.#faultArmed && m === fault.member ? this.#injure(fault.how) : run(m, n)) };
      });
    }
    return p;
  }

  /** @internal test hook: the failure a phase is made to have (a real wasm trap, or the thread's exit). */
  #injure(how: EngineFault['how']): void {
    if (how === 'exit') process.exit(3);
    // A GEMM whose output lies past the end of the arena: the wasm bounds check traps (RuntimeError).
    this.kernels.matmul.run({ m: 4, n: 8, k: 1, a: 64, rsA: 1, csA: 1, b: 64, rsB: 1, csB: 1, c: this.memory.buffer.byteLength + 4096, ldc: 8 }, this.kernels.scratch(0));
  }

  readonly #fault: EngineFault | null;
  #faultArmed = false;

  /** @internal test hook: arm the fault for the pass about to run (the engine arms it at the step it names). */
  armFault(armed: boolean): void {
    this.#faultArmed = armed && this.#fault !== null;
  }

  /**
   * Run one pass as `team`'s member over `batch` (gathered by the pass's first phase; null for a sample
   * pass, whose inputs the caller wrote). A failed check of the hand-off raises the team's flag.
   */
  run(shape: PassShape, team: TeamLike, batch: PassBatch | null, flush: Flush = kCopyChecked): void {
    this.#pass(shape, team, batch, flush, true, (program) => runTeam(program, team));
  }

  /** A pass's state set for its phases, counted in `passes` when a team runs it, cleared after. */
  #pass(shape: PassShape, team: TeamLike, batch: PassBatch | null, flush: Flush, counted: boolean, go: (program: Program) => void): void {
    this.#batch = batch;
    this.#flushMode = flush.mode;
    this.#check = flush.check;
    this.#team = team;
    this.#setScratch(shape.kind);
    if (counted) this.passes++;
    try {
      go(this.program(shape));
    } finally {
      this.#batch = null;
      this.#team = null;
    }
  }

  /** The parameters copied in from the shard memories, `team`'s members each a share. */
  copyIn(team: TeamLike): void {
    runTeam(this.copyInProgram(), team);
  }

  /**
   * A pass as a team of `members` would run it, on this thread: every phase as each member in turn (the same
   * bits as the threads give: tests, and the main thread's own passes).
   */
  runSerial(shape: PassShape, members: number, batch: PassBatch | null, flush: Flush = kCopyChecked, team: TeamLike = new SoloTeam()): void {
    this.#pass(shape, team, batch, flush, false, (program) => runSerial(program, members));
  }

  /** copyIn, on this thread, cut as for `members`. */
  copyInSerial(members: number): void {
    runSerial(this.copyInProgram(), members);
  }

  /** Write tensor `tensor`'s values straight into the copy of the parameters (no optimizer: `shardtrain sample`). */
  setParam(tensor: number, values: ArrayLike<number>): void {
    let at = this.plan.paramBase / 4;
    for (let t = 0; t < tensor; t++) at += this.model.tensors[t].size;
    this.#f32.set(values, at);
  }

  /** Where a pass's slot of the engine is (inputs, targets, losses, logits). */
  slotAt(kind: PassKind, name: 'inputs' | 'targets' | 'losses' | 'logits'): number {
    return this.plan.layouts[kind].at(name);
  }

  /** The per-row losses of the last pass, summed in row order (float64). */
  lossSum(shape: PassShape): number {
    const at = this.plan.layouts[shape.kind].at('losses') / 4;
    const n = shape.batch * this.model.lossRows(shape.tokens);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += this.#f32[at + i];
    return sum;
  }

  /** The program that copies the parameters in from the shard memories, split over the members. */
  copyInProgram(): Program {
    const key = 'copy-in';
    let p = this.#programs.get(key);
    if (p === undefined) {
      p = new Program();
      p.push('parameters copied in', (m, n) => this.#copyInPart(m, n));
      this.#programs.set(key, p);
    }
    return p;
  }

  #copyInPart(member: number, members: number): void {
    const { layout, shards } = this.#writer();
    const [a, b] = memberSlice(layout.totalSize, member, members, kCopyUnit);
    const base = this.plan.paramBase / 4;
    for (const shard of shards) {
      const s0 = Math.max(a, shard.range.start);
      const s1 = Math.min(b, shard.range.start + shard.range.size);
      if (s1 > s0) this.#f32.set(shard.params.subarray(s0 - shard.range.start, s1 - shard.range.start), base + s0);
    }
  }

  #writer(): SlotWriter {
    if (this.#target === null) throw new Error('this replica has no optimizer to copy from or hand off to');
    return this.#target.writer;
  }

  /** Rows [e0, e1) of the batch, member `member`'s share, into the pass's inputs and targets. */
  #gatherPart(at: PassAddresses, shape: PassShape, member: number, members: number): void {
    const batch = this.#batch;
    if (batch === null) throw new Error('no batch was given to this pass');
    const { set, indices } = batch;
    const [e0, e1] = memberSlice(shape.batch, member, members);
    const xIn = this.model.inputElements(shape.tokens);
    const yIn = this.model.targetElements(shape.tokens);
    const xs = at.inputs / 4;
    const ys = at.targets / 4;
    // Element loops rather than subarray + set: a batch of short examples would allocate two views per example.
    const out = this.#i32;
    if (isTokenWindows(set)) {
      const stride = set.stride ?? 1;
      const T = shape.tokens;
      const tokens = set.tokens;
      for (let e = e0; e < e1; e++) {
        const s = indices[e] * stride;
        const xo = xs + e * T;
        const yo = ys + e * T;
        for (let t = 0; t < T; t++) {
          out[xo + t] = tokens[s + t];
          out[yo + t] = tokens[s + t + 1];
        }
      }
      return;
    }
    const x = set.x as Int32Array;
    const y = set.y as Int32Array;
    for (let e = e0; e < e1; e++) {
      const i = indices[e];
      for (let t = 0; t < xIn; t++) out[xs + e * xIn + t] = x[i * xIn + t];
      for (let t = 0; t < yIn; t++) out[ys + e * yIn + t] = y[i * yIn + t];
    }
  }

  /** The runs of every gradient group: arena → (shard, offset), in group order. */
  #runs(): FlushRun[][] {
    if (this.#flushRuns !== null) return this.#flushRuns;
    const { layout } = this.#writer();
    this.#flushRuns = this.model.gradGroups.map((group) => {
      const runs: FlushRun[] = [];
      let before = 0;
      for (const t of group) {
        for (const seg of layout.segments) {
          if (seg.tensor !== t) continue;
          runs.push({ src: this.plan.gradHome[t] / 4 + seg.tensorStart, shard: seg.shard, shardStart: seg.shardStart, length: seg.length, before });
          before += seg.length;
        }
      }
      return runs;
    });
    return this.#flushRuns;
  }

  /** Member `member`'s share of group `group`'s hand-off to the slot (or, for a probe, the scan). */
  #flushPart(group: number, member: number, members: number): void {
    if (this.#flushMode === 'scan') return this.#scanPart(group, member, members);
    const { shards, kernels } = this.#writer();
    const slot = this.#target!.slot;
    const runs = this.#runs()[group];
    const total = runs.length === 0 ? 0 : runs[runs.length - 1].before + runs[runs.length - 1].length;
    const [a, b] = memberSlice(total, member, members, kCopyUnit);
    const add = this.#flushMode === 'add';
    for (const run of runs) {
      const r0 = Math.max(a, run.before);
      const r1 = Math.min(b, run.before + run.length);
      for (let at = r0; at < r1; at += kPieceFloats) {
        const n = Math.min(kPieceFloats, r1 - at);
        const src = run.src + (at - run.before);
        const dst = run.shardStart + (at - run.before);
        const shard = shards[run.shard];
        const slotView = shard.grads[slot];
        if (add) {
          for (let i = 0; i < n; i++) slotView[dst + i] += this.#f32[src + i];
        } else {
          slotView.set(this.#f32.subarray(src, src + n), dst);
        }
        if (this.#check && !kernels.slotWithinBound(shard, slot, dst, dst + n, kCheckedBound)) this.#team!.markFailed();
      }
    }
  }

  /** Probe: is every value of group `group`'s staged gradient finite (member's share)? */
  #scanPart(group: number, member: number, members: number): void {
    const model = this.model;
    const tensors = model.gradGroups[group];
    for (const t of tensors) {
      const src = this.plan.gradHome[t] / 4;
      const [a, b] = memberSlice(model.tensors[t].size, member, members);
      for (let i = a; i < b; i++) {
        if (!Number.isFinite(this.#f32[src + i])) {
          this.#team!.markFailed();
          return;
        }
      }
    }
  }
}

/** Each tensor's first element in the flat index space (tensors end to end, as memory/layout.ts lays them). */
function tensorOffsets(model: EngineModel): number[] {
  const out: number[] = [];
  let at = 0;
  for (const t of model.tensors) {
    out.push(at);
    at += t.size;
  }
  return out;
}
