// The optimizer step's speed on this machine, next to its baselines measured in the same run (baselines.ts):
// what `shardtrain bench` and `npm run bench` run (the flags are in src/cli/bench.ts, the table and chart
// in report.ts). A benchmark, never a test.

import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { viewShard } from '../memory/shard-states.js';
import { nonFinitePolicies, type NonFinitePolicy } from '../optim/options.js';
import { createOptimizer, type ShardedAdamW } from '../parallel/optimizer.js';
import { buildNative, median, memcpyBandwidth, plainAdamwStep, runNative, runTfjsAdam, timeSync } from './baselines.js';
import { fmtCount, fmtRate, kBytesPerParam, type BenchReport, type BenchRow, type LatencyReport } from './report.js';

/** Largest tensor of the bench model (a model is many tensors; the last may be smaller). */
const kTensorFloats = 1 << 22;

/**
 * What a bench row times: an onNonFinite policy with the gradients written through the live views (so
 * 'throw' and 'skip' scan them), or `checked`: the default policy ('throw') with the gradients given to
 * setGrads before each step, which checks them as it copies them in (the trainer's path), so the step skips
 * its scan. The copy itself is not timed: the native loop does not copy either.
 */
export const benchChecks = Object.freeze([...nonFinitePolicies, 'checked'] as const);
export type BenchCheck = (typeof benchChecks)[number];

export interface BenchOptions {
  sizes: number[];
  threads: number[];
  /** Timed steps per measurement (the median is reported). */
  steps: number;
  checks: BenchCheck[];
  native: boolean;
  /** Sizes at which tfjs is measured (it is slow). */
  tfjsSizes: number[];
  plain: boolean;
  latency: boolean;
  json?: string;
  svg?: string;
  log: (line: string) => void;
}

let gcFn: (() => void) | null = null;
/** Collect now, so the previous optimizer's gigabytes are gone before the next allocates. */
function collect(): void {
  if (gcFn === null) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** The bench model: n params as tensors of ≤ 4 M floats, all initialised from one small array. */
function benchParams(n: number): Array<[string, Float32Array]> {
  const init = new Float32Array(Math.min(n, kTensorFloats));
  for (let i = 0; i < init.length; i++) init[i] = 0.5 - (i % 1000) * 1e-3;
  const out: Array<[string, Float32Array]> = [];
  for (let at = 0, k = 0; at < n; at += kTensorFloats, k++) out.push([`layer${k}`, init.subarray(0, Math.min(kTensorFloats, n - at))]);
  return out;
}

/** The bench gradient, by tensor: one small pattern, viewed. */
function benchGrads(opt: ShardedAdamW): Record<string, Float32Array> {
  const pattern = new Float32Array(Math.min(opt.layout.totalSize, kTensorFloats));
  for (let i = 0; i < pattern.length; i++) pattern[i] = 1e-2 * ((i % 7) - 3);
  return Object.fromEntries(opt.layout.tensors.map((t) => [t.name, pattern.subarray(0, t.size)]));
}

/** An optimizer at n params whose `step()` does what `check` times (see benchChecks). */
export interface BenchOptimizer {
  readonly opt: ShardedAdamW;
  /** Untimed work before each timed step (setGrads for `checked`). */
  readonly before: () => void;
}

export async function newOptimizer(n: number, threads: number, dispatch: 'pool' | 'inline', check: BenchCheck): Promise<BenchOptimizer> {
  const opt = await createOptimizer({ params: benchParams(n), threads, dispatch, onNonFinite: check === 'checked' ? 'throw' : check, kernel: 'auto' });
  const grads = benchGrads(opt);
  if (check === 'checked') return { opt, before: () => opt.setGrads(grads) };
  for (const [name, g] of Object.entries(grads)) opt.grads[name].set(g);
  return { opt, before: () => undefined };
}

/** Seconds of each of `steps` timed opt.step() calls after `warmup` untimed ones. */
export async function stepTimes(b: BenchOptimizer, steps: number, warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) {
    b.before();
    await b.opt.step();
  }
  const t: number[] = [];
  for (let i = 0; i < steps; i++) {
    b.before();
    const t0 = performance.now();
    await b.opt.step();
    t.push((performance.now() - t0) / 1e3);
  }
  return t;
}

/** Median seconds of opt.step() after `warmup` steps. */
async function timeSteps(b: BenchOptimizer, steps: number, warmup: number): Promise<number> {
  return median(await stepTimes(b, steps, warmup));
}

/**
 * Heap bytes one step() leaves allocated, averaged over `steps` steps after warm-up: used_heap_size after
 * minus before, with a collection first and none in between (a scavenge would hide allocation, so the count
 * is repeated until no GC ran; the young generation holds far more than `steps` small objects).
 */
async function heapBytesPerStep(opt: ShardedAdamW, steps: number): Promise<number> {
  for (let i = 0; i < 50; i++) await opt.step();
  for (let attempt = 0; attempt < 5; attempt++) {
    let gcs = 0;
    const observer = new PerformanceObserver((list) => (gcs += list.getEntries().length));
    observer.observe({ entryTypes: ['gc'] });
    collect();
    await sleep(10); // the observer hears of a GC a little later
    gcs = 0;
    const before = getHeapStatistics().used_heap_size;
    for (let i = 0; i < steps; i++) await opt.step();
    const after = getHeapStatistics().used_heap_size;
    await sleep(10);
    observer.disconnect();
    if (gcs === 0) return (after - before) / steps;
  }
  return Number.NaN;
}

/** The plain single-thread JS loop over the optimizer's own shard memories (no second copy of the state). */
function timePlainJs(opt: ShardedAdamW, reps: number): number {
  const shards = opt.layout.shards.map((range, i) => viewShard(range, opt.memories[i], opt.options.gradSlots, opt.knobs.amsgrad));
  let t = 0;
  return timeSync(() => {
    t++;
    for (const s of shards) plainAdamwStep(s.params, s.m, s.v, s.grads[0], s.range.size, t);
  }, reps, 1);
}

async function measureLatency(maxThreads: number, log: (s: string) => void): Promise<LatencyReport> {
  const n = 100_000;
  const lat = async (size: number, threads: number, dispatch: 'pool' | 'inline', check: NonFinitePolicy, steps: number) => {
    const b = await newOptimizer(size, threads, dispatch, check);
    try {
      return (await timeSteps(b, steps, Math.max(20, steps >> 2))) * 1e6;
    } finally {
      await b.opt.close();
    }
  };
  const p = new Float32Array(n).fill(0.5);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const g = new Float32Array(n).fill(0.01);
  let t = 0;
  const plainJsUs = timeSync(() => plainAdamwStep(p, m, v, g, n, ++t), 301, 50) * 1e6;
  const report: LatencyReport = {
    params: n,
    inlineUs: await lat(n, 1, 'inline', 'throw', 301),
    inlineIgnoreUs: await lat(n, 1, 'inline', 'ignore', 301),
    poolUs: await lat(n, maxThreads, 'pool', 'throw', 301),
    poolIgnoreUs: await lat(n, maxThreads, 'pool', 'ignore', 301),
    plainJsUs,
    sweep: [],
    recommendedInlineBelow: null,
    heapBytesPerStep: { inline: Number.NaN, pool: Number.NaN, steps: 200 },
  };
  for (const dispatch of ['inline', 'pool'] as const) {
    const { opt } = await newOptimizer(n, dispatch === 'inline' ? 1 : maxThreads, dispatch, 'throw');
    try {
      report.heapBytesPerStep[dispatch] = await heapBytesPerStep(opt, report.heapBytesPerStep.steps);
    } finally {
      await opt.close();
    }
  }
  for (const size of [1 << 14, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22]) {
    const steps = size <= 1 << 18 ? 201 : 41;
    const row = { params: size, inlineUs: await lat(size, 1, 'inline', 'throw', steps), poolUs: await lat(size, maxThreads, 'pool', 'throw', steps) };
    report.sweep.push(row);
    log(`  latency sweep ${size}: inline ${row.inlineUs.toFixed(1)} µs, pool(${maxThreads}) ${row.poolUs.toFixed(1)} µs`);
  }
  for (let k = report.sweep.length - 1; k >= 0 && report.sweep[k].poolUs < report.sweep[k].inlineUs; k--) report.recommendedInlineBelow = report.sweep[k].params;
  return report;
}

export async function runBench(o: BenchOptions, command: string): Promise<BenchReport> {
  const log = o.log;
  const report: BenchReport = {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memGB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavg: loadavg() },
    command,
    memcpy: [],
    native: { note: 'native baseline not requested (--no-native)', rows: [] },
    plainJs: [],
    tfjs: [],
    rows: [],
    peakRssBytes: 0,
  };
  for (const threads of o.threads) {
    report.memcpy.push({ threads, gbPerSec: await memcpyBandwidth(threads) });
    log(`memcpy probe, ${threads} thread(s): ${report.memcpy[report.memcpy.length - 1].gbPerSec.toFixed(1)} GB/s (read + write of a 512 MiB Float32Array copy)`);
  }
  collect();
  const nb = o.native ? buildNative() : null;
  if (nb) {
    report.native.note = nb.note;
    log(nb.note);
  }
  try {
    for (const n of o.sizes) {
      const nativeAt = new Map<number, number>();
      if (nb) {
        for (const t of o.threads) {
          const s = runNative(nb, n, t, o.steps)?.median ?? null;
          if (s !== null) {
            nativeAt.set(t, s);
            report.native.rows.push({ params: n, threads: t, stepMs: s * 1e3, paramsPerSec: n / s });
            log(`  native ${fmtCount(n)} × ${t} thread(s): ${(s * 1e3).toFixed(2)} ms, ${fmtRate(n / s)} params/s`);
          } else log(`  native ${fmtCount(n)} × ${t}: failed (out of memory?)`);
        }
      }
      let tfjsSeconds: number | null = null;
      if (o.tfjsSizes.includes(n)) {
        const r = await runTfjsAdam(n, Math.min(o.steps, 5));
        if ('error' in r) {
          report.tfjs.push({ params: n, error: r.error });
          log(`  tfjs ${fmtCount(n)}: ${r.error}`);
        } else {
          tfjsSeconds = r.seconds;
          report.tfjs.push({ params: n, stepMs: r.seconds * 1e3, paramsPerSec: n / r.seconds });
          log(`  tfjs train.adam (${r.backend}) ${fmtCount(n)}: ${(r.seconds * 1e3).toFixed(1)} ms, ${fmtRate(n / r.seconds)} params/s`);
        }
        collect();
      }
      let plainSeconds: number | null = null;
      for (const t of o.threads) {
        for (const check of o.checks) {
          const b = await newOptimizer(n, t, 'pool', check);
          const opt = b.opt;
          try {
            const s = await timeSteps(b, o.steps, 2);
            if (o.plain && plainSeconds === null) {
              plainSeconds = timePlainJs(opt, Math.min(o.steps, 5));
              report.plainJs.push({ params: n, stepMs: plainSeconds * 1e3, paramsPerSec: n / plainSeconds });
              log(`  plain JS loop ${fmtCount(n)} × 1 thread: ${(plainSeconds * 1e3).toFixed(1)} ms, ${fmtRate(n / plainSeconds)} params/s`);
            }
            const native = nativeAt.get(t);
            const row: BenchRow = {
              params: n,
              threads: t,
              onNonFinite: check,
              stepMs: s * 1e3,
              paramsPerSec: n / s,
              gbPerSec: (n * kBytesPerParam) / s / 1e9,
              vsNative: native !== undefined ? native / s : null,
              vsPlainJs: plainSeconds !== null ? plainSeconds / s : null,
              vsTfjs: tfjsSeconds !== null ? tfjsSeconds / s : null,
              ofMemcpy: (n * kBytesPerParam) / s / 1e9 / report.memcpy.find((c) => c.threads === t)!.gbPerSec,
            };
            report.rows.push(row);
            log(`  shardtrain ${fmtCount(n)} × ${t} thread(s), ${check === 'checked' ? 'gradients checked by setGrads' : `onNonFinite ${check}`}: ${row.stepMs.toFixed(2)} ms, ${fmtRate(row.paramsPerSec)} params/s (kernel ${opt.kernel}, ${opt.layout.shards.length} shard(s))`);
          } finally {
            await opt.close();
          }
          collect();
        }
      }
    }
  } finally {
    nb?.cleanup();
  }
  if (o.latency) report.latency = await measureLatency(Math.max(...o.threads), log);
  report.peakRssBytes = process.resourceUsage().maxRSS * 1024;
  return report;
}
