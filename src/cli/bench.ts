// `shardtrain bench` and `npm run bench` (scripts/bench.ts): the optimizer step's speed on this machine, next
// to its baselines measured in the same run (bench-baselines.ts), printed as one markdown table; `--json` and
// `--svg` write the table and a chart of params/s against threads. A benchmark, never a test.

import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { chartSvg, fmtCount, fmtRate, formatReport } from './bench-report.js';
import { viewShard } from '../memory/shard-states.js';
import { createOptimizer, type ShardedAdamW } from '../optim/optimizer.js';
import type { NonFinitePolicy } from '../optim/options.js';
import { buildNative, median, memcpyBandwidth, plainAdamwStep, runNative, runTfjsAdam, timeSync } from './bench-baselines.js';

/** Bytes a step moves per parameter: reads p, g, m, v and writes p, m, v. */
export const kBytesPerParam = 28;
/** Largest tensor of the bench model (a model is many tensors; the last may be smaller). */
const kTensorFloats = 1 << 22;

export interface BenchOptions {
  sizes: number[];
  threads: number[];
  /** Timed steps per measurement (the median is reported). */
  steps: number;
  checks: NonFinitePolicy[];
  native: boolean;
  /** Sizes at which tfjs is measured (it is slow). */
  tfjsSizes: number[];
  plain: boolean;
  latency: boolean;
  json?: string;
  svg?: string;
  log: (line: string) => void;
}

export interface BenchRow {
  params: number;
  threads: number;
  onNonFinite: NonFinitePolicy;
  stepMs: number;
  paramsPerSec: number;
  gbPerSec: number;
  vsNative: number | null;
  vsPlainJs: number | null;
  vsTfjs: number | null;
  /** Effective GB/s as a fraction of the memcpy probe's at the same thread count. */
  ofMemcpy: number;
}

export interface BenchReport {
  machine: { cpu: string; cores: number; memGB: number; node: string; loadavg: number[] };
  command: string;
  /** Copy bandwidth (read + write) with 1..max threads copying at once. */
  memcpy: { threads: number; gbPerSec: number }[];
  native: { note: string; rows: { params: number; threads: number; stepMs: number; paramsPerSec: number }[] };
  plainJs: { params: number; stepMs: number; paramsPerSec: number }[];
  tfjs: { params: number; stepMs?: number; paramsPerSec?: number; error?: string }[];
  rows: BenchRow[];
  latency?: LatencyReport;
  peakRssBytes: number;
}

export interface LatencyReport {
  params: number;
  inlineUs: number;
  inlineIgnoreUs: number;
  poolUs: number;
  poolIgnoreUs: number;
  plainJsUs: number;
  sweep: { params: number; inlineUs: number; poolUs: number }[];
  /** Smallest swept size from which the pool is faster at every larger size (null: never). */
  recommendedInlineBelow: number | null;
  /** JS heap bytes allocated per step() after warm-up (inline and pool): small objects, no arrays. */
  heapBytesPerStep: { inline: number; pool: number; steps: number };
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

function fillGrads(opt: ShardedAdamW): void {
  const pattern = new Float32Array(Math.min(opt.layout.totalSize, kTensorFloats));
  for (let i = 0; i < pattern.length; i++) pattern[i] = 1e-2 * ((i % 7) - 3);
  for (const t of opt.layout.tensors) opt.grads[t.name].set(pattern.subarray(0, t.size));
}

async function newOptimizer(n: number, threads: number, dispatch: 'pool' | 'inline', onNonFinite: NonFinitePolicy): Promise<ShardedAdamW> {
  const opt = await createOptimizer({ params: benchParams(n), threads, dispatch, onNonFinite, kernel: 'auto' });
  fillGrads(opt);
  return opt;
}

/** Median seconds of opt.step() after `warmup` steps. */
async function timeSteps(opt: ShardedAdamW, steps: number, warmup: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await opt.step();
  const t: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await opt.step();
    t.push((performance.now() - t0) / 1e3);
  }
  return median(t);
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
    const opt = await newOptimizer(size, threads, dispatch, check);
    try {
      return (await timeSteps(opt, steps, Math.max(20, steps >> 2))) * 1e6;
    } finally {
      await opt.close();
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
    const opt = await newOptimizer(n, dispatch === 'inline' ? 1 : maxThreads, dispatch, 'throw');
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
          const s = runNative(nb, n, t, o.steps);
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
          const opt = await newOptimizer(n, t, 'pool', check);
          try {
            const s = await timeSteps(opt, o.steps, 2);
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
            log(`  shardtrain ${fmtCount(n)} × ${t} thread(s), onNonFinite ${check}: ${row.stepMs.toFixed(2)} ms, ${fmtRate(row.paramsPerSec)} params/s (kernel ${opt.kernel}, ${opt.layout.shards.length} shard(s))`);
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

// ---- command line ----

function parseCount(s: string, what: string): number {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 16) throw new Error(`${what} must be an integer ≥ 16 (e.g. 1e7), got "${s}"`);
  return n;
}

function parseList(s: string, what: string): number[] {
  return s.split(',').map((x) => parseCount(x, what));
}

interface CliFlags {
  sizes?: string;
  params?: string;
  threads?: string;
  steps: string;
  checks?: string;
  native: boolean;
  tfjs: boolean;
  tfjsSizes: string;
  plain: boolean;
  latency: boolean;
  json?: string;
  svg?: string;
}

export function benchOptionsFromFlags(f: CliFlags): BenchOptions {
  const sizes = f.params ? [parseCount(f.params, '--params')] : f.sizes ? parseList(f.sizes, '--sizes') : [1e7, 5e7];
  const threads = f.threads
    ? f.threads.split(',').map((x) => {
        const t = Number(x);
        if (!Number.isInteger(t) || t < 1) throw new Error(`--threads must be positive integers, got "${x}"`);
        return t;
      })
    : Array.from({ length: availableParallelism() }, (_, i) => i + 1);
  const steps = Number(f.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got "${f.steps}"`);
  // Two optimizers of a huge model do not fit side by side: one check policy by default above 2e8.
  const checks = (f.checks ?? (Math.max(...sizes) > 2e8 ? 'throw' : 'throw,ignore')).split(',') as NonFinitePolicy[];
  for (const c of checks) if (!['throw', 'skip', 'ignore'].includes(c)) throw new Error(`--checks must list throw, skip or ignore, got "${c}"`);
  return {
    sizes,
    threads,
    steps,
    checks,
    native: f.native,
    tfjsSizes: f.tfjs ? parseList(f.tfjsSizes, '--tfjs-sizes') : [],
    plain: f.plain,
    latency: f.latency && !f.params,
    json: f.json,
    svg: f.svg,
    log: (line) => console.error(line),
  };
}

export async function benchMain(flags: CliFlags, command: string): Promise<void> {
  const o = benchOptionsFromFlags(flags);
  const report = await runBench(o, command);
  console.log(formatReport(report));
  if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
  if (o.svg) writeFileSync(o.svg, await chartSvg(report));
}

export function addBenchOptions(cmd: Command): Command {
  return cmd
    .option('--sizes <list>', 'model sizes in params, comma-separated (default 1e7,5e7)')
    .option('--params <n>', 'one model size (e.g. 1e9); skips the latency section')
    .option('--threads <list>', 'thread counts, comma-separated (default 1..availableParallelism)')
    .option('--steps <n>', 'timed steps per measurement; the median is reported', '7')
    .option('--checks <list>', "onNonFinite policies to time (default throw,ignore; throw alone above 2e8 params)")
    .option('--no-native', 'skip the native C baseline')
    .option('--no-tfjs', 'skip tfjs train.adam')
    .option('--tfjs-sizes <list>', 'sizes at which to run tfjs (slow)', '1e7')
    .option('--no-plain', 'skip the plain JS loop')
    .option('--no-latency', 'skip the 100 k-param latency section')
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <file>', 'write a chart of params/s vs threads (vega-lite)');
}

export function registerBench(program: Command): void {
  addBenchOptions(program.command('bench').description('time opt.step() against native C, plain JS and tfjs baselines (see README, Performance)')).action(
    async (flags: CliFlags) => {
      await benchMain(flags, `shardtrain bench ${process.argv.slice(3).join(' ')}`.trim());
    },
  );
}
