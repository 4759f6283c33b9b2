// The memory plan of a run on shardtrain's engine, computed before anything is allocated: where every byte
// of each replica's arena goes (nn/arena.ts lays the slots out from it), what the shared states take, and
// whether it all fits the machine and wasm32's 4 GiB per memory. The same function sizes the arenas, prints
// the run's one-line plan (`shardtrain train --dry-run` prints only that) and refuses what cannot fit.

import { freemem } from 'node:os';
import { bytesPerParam } from '../memory/layout.js';
import { ArenaLayout, kMaxArenaBytes, type SlotSpec } from '../nn/arena.js';
import type { Ptr } from '../nn/program.js';
import type { EngineModel, PassKind, PassShape } from '../models/engine-model.js';
import { ConfigError } from './config.js';

export interface ArenaPlan {
  /** The arena's layout for each kind of pass: the same params and gradient homes in all, then the pass's own slots. */
  readonly layouts: Readonly<Record<PassKind, ArenaLayout>>;
  readonly shapes: Readonly<Record<PassKind, PassShape>>;
  /** Bytes of the arena: the largest of the layouts. */
  readonly bytes: number;
  /** Where the copy of the parameters starts: element i of the flat index space is at paramBase + 4·i. */
  readonly paramBase: Ptr;
  /** Each tensor's gradient home (its own slot, or its place in the staging slot its group shares). */
  readonly gradHome: readonly Ptr[];
  /** Scratch bytes of one member (the GEMM's packing and the model's own), and the members it is laid out for. */
  readonly scratchBytes: number;
  readonly members: number;
  /** For the report: parameters, gradient homes, the largest pass's activations and its scratch. */
  readonly parts: { readonly params: number; readonly gradients: number; readonly activations: number; readonly scratch: number };
}

const kScratchAlign = 64;

/**
 * Lay out one replica's arena for `model` with team size `members`: params (the flat space), gradient homes
 * (persistent tensors their own, the others one staging slot as large as the largest group), then for each
 * pass inputs, targets, losses, logits, the model's slots and every member's scratch.
 */
export function planArena(model: EngineModel, shapes: Readonly<Record<PassKind, PassShape>>, members: number, matmulScratchBytes: number): ArenaPlan {
  const tensors = model.tensors;
  const offsets: number[] = [];
  let total = 0;
  for (const t of tensors) {
    offsets.push(total);
    total += t.size;
  }
  const persistent = new Set(model.persistentGrads);
  const stagedSize = (group: readonly number[]) => group.reduce((n, t) => n + (persistent.has(t) ? 0 : tensors[t].size), 0);
  const staging = Math.max(0, ...model.gradGroups.map(stagedSize));
  const common: SlotSpec[] = [
    { name: 'params', elements: total },
    ...[...persistent].map((t) => ({ name: `grad.${t}`, elements: tensors[t].size })),
    { name: 'grad.staging', elements: staging },
  ];
  const scratchFor = (shape: PassShape) => Math.ceil((matmulScratchBytes + model.scratchBytes(shape)) / kScratchAlign) * kScratchAlign;
  const scratchBytes = Math.max(...(Object.values(shapes) as PassShape[]).map(scratchFor));
  const layoutFor = (shape: PassShape): ArenaLayout => {
    const { batch, tokens } = shape;
    return new ArenaLayout([
      ...common,
      { name: 'inputs', elements: batch * model.inputElements(tokens) },
      { name: 'targets', elements: shape.kind === 'sample' ? 0 : batch * model.targetElements(tokens) },
      { name: 'losses', elements: shape.kind === 'sample' ? 0 : batch * model.lossRows(tokens) },
      { name: 'logits', elements: shape.kind === 'sample' ? batch * model.vocab : 0 },
      ...model.slots(shape).map((s) => ({ name: `model.${s.name}`, elements: s.elements })),
      { name: 'scratch', elements: (members * scratchBytes) / 4 },
    ]);
  };
  const layouts = { train: layoutFor(shapes.train), eval: layoutFor(shapes.eval), sample: layoutFor(shapes.sample) };
  const train = layouts.train;
  const gradHome: Ptr[] = new Array(tensors.length).fill(-1);
  for (const group of model.gradGroups) {
    let at = train.at('grad.staging');
    for (const t of group) {
      if (persistent.has(t)) {
        gradHome[t] = train.at(`grad.${t}`);
      } else {
        gradHome[t] = at;
        at += 4 * tensors[t].size;
      }
    }
  }
  const missing = gradHome.findIndex((a) => a < 0);
  if (missing >= 0) throw new Error(`engine model: tensor ${tensors[missing].name} is in no gradient group`);
  const bytes = Math.max(layouts.train.bytes, layouts.eval.bytes, layouts.sample.bytes);
  const commonBytes = train.at('inputs');
  const paramsBytes = train.at(persistent.size > 0 ? `grad.${[...persistent][0]}` : 'grad.staging') - train.at('params');
  const scratchTotal = members * scratchBytes;
  return {
    layouts,
    shapes,
    bytes,
    paramBase: train.at('params'),
    gradHome,
    scratchBytes,
    members,
    parts: { params: paramsBytes, gradients: commonBytes - paramsBytes, activations: bytes - commonBytes - scratchTotal, scratch: scratchTotal },
  };
}

/** What the whole run holds, in bytes. */
export interface MemoryPlan {
  readonly params: number;
  /** params, m, v (v_max), the gradient slots: in the shard memories. */
  readonly sharedStates: number;
  readonly bytesPerParam: number;
  readonly arenas: readonly ArenaPlan[];
  /** The data set's token ids or examples, in shared memory once. */
  readonly data: number;
  /** Each thread's own: V8's heap and the engine's code (the data order holds no table: data-order.ts). */
  readonly perThread: number;
  readonly threads: number;
  readonly total: number;
  /** What the machine can give now (MemAvailable, or the cgroup's limit when lower). */
  readonly available: number;
}

/** A thread's V8 heap with the engine loaded, measured at ~25 MB; a margin over it. */
const kThreadBaseBytes = 40 * 2 ** 20;
/** The main thread's runtime, zod, piscina, the CLI: ~80 MB measured; a margin over it. */
const kProcessBaseBytes = 120 * 2 ** 20;

export function availableMemory(): number {
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  const free = freemem();
  return constrained !== undefined && constrained > 0 ? Math.min(constrained, free) : free;
}

export function memoryPlan(o: { params: number; replicas: number; amsgrad: boolean; arenas: readonly ArenaPlan[]; dataBytes: number; threads: number }): MemoryPlan {
  const bpp = bytesPerParam(o.replicas, o.amsgrad);
  const sharedStates = o.params * bpp;
  const perThread = kThreadBaseBytes;
  const arenas = o.arenas.reduce((n, a) => n + a.bytes, 0);
  const total = kProcessBaseBytes + sharedStates + arenas + o.dataBytes + (o.threads + 1) * perThread;
  return { params: o.params, sharedStates, bytesPerParam: bpp, arenas: o.arenas, data: o.dataBytes, perThread, threads: o.threads, total, available: availableMemory() };
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 10).toFixed(1)} KiB`;
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

/** The plan in one line. */
export function describeMemoryPlan(plan: MemoryPlan): string {
  const a = plan.arenas[0];
  const arenas = plan.arenas.length === 1 ? '1 arena' : `${plan.arenas.length} arenas`;
  return (
    `memory plan: shared states ${formatBytes(plan.sharedStates)} (${formatCount(plan.params)} params × ${plan.bytesPerParam} B: params, m, v, gradient slots)` +
    ` + ${arenas} × ${formatBytes(a.bytes)} (params ${formatBytes(a.parts.params)}, gradients ${formatBytes(a.parts.gradients)}, activations ${formatBytes(a.parts.activations)}, scratch ${formatBytes(a.parts.scratch)})` +
    ` + data ${formatBytes(plan.data)} + ${plan.threads + 1} threads × ${formatBytes(plan.perThread)}` +
    ` ≈ ${formatBytes(plan.total)} of ${formatBytes(plan.available)} available`
  );
}

/** Refuse, in one line with the figure and the remedy, a plan that cannot run here. */
export function checkMemoryPlan(plan: MemoryPlan, where: string): void {
  const remedy = 'a smaller micro-batch (accumulateSteps), fewer replicas, or a shorter context';
  plan.arenas.forEach((a, r) => {
    if (a.bytes > kMaxArenaBytes) {
      const pass = (Object.keys(a.layouts) as PassKind[]).reduce((big, k) => (a.layouts[k].bytes > a.layouts[big].bytes ? k : big), 'train' as PassKind);
      throw new ConfigError(`${where}: replica ${r}'s arena would take ${formatBytes(a.bytes)} (its ${pass} pass), past the 4 GiB a WebAssembly memory can hold: use ${remedy}${pass === 'eval' ? ' (or a smaller evalBatch)' : ''}`);
    }
  });
  if (plan.total > plan.available) {
    throw new ConfigError(`${where}: the run needs about ${formatBytes(plan.total)} and this machine has ${formatBytes(plan.available)} available (${describeMemoryPlan(plan).replace(/^memory plan: /, '')}): use ${remedy}`);
  }
}
