// The bench report: its shape, as text (a markdown table plus notes) and as a chart (SVG, vega-lite).

import { vegaLiteSvg } from '../plot/svg.js';

/** Bytes a step moves per parameter: reads p, g, m, v and writes p, m, v. */
export const kBytesPerParam = 28;

export interface BenchRow {
  params: number;
  threads: number;
  /** onNonFinite policy, or `checked`: 'throw' with gradients given to setGrads (checked as copied; see measure.ts). */
  onNonFinite: string;
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


export function fmtCount(n: number): string {
  if (n >= 1e9) return `${+(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function fmtRate(r: number): string {
  return r >= 1e9 ? `${(r / 1e9).toFixed(2)} G` : `${(r / 1e6).toFixed(1)} M`;
}

const ratio = (x: number | null) => (x === null ? '—' : `${x.toFixed(2)}×`);

export function formatReport(r: BenchReport): string {
  const lines: string[] = [];
  lines.push(`${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memGB} GB, Node ${r.machine.node}, load average ${r.machine.loadavg.map((x) => x.toFixed(2)).join(' ')} at start`);
  lines.push(`\`${r.command}\``);
  lines.push('');
  lines.push('| params | threads | onNonFinite (gradients) | step ms | params/s | GB/s (28 B/param) | × native | × plain JS (1 thread) | × tfjs wasm Adam | of memcpy GB/s (same threads) |');
  lines.push('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const x of r.rows) {
    lines.push(
      `| ${fmtCount(x.params)} | ${x.threads} | ${x.onNonFinite === 'checked' ? 'throw (setGrads: checked as copied)' : `${x.onNonFinite} (views)`} | ${x.stepMs.toFixed(2)} | ${fmtRate(x.paramsPerSec)} | ${x.gbPerSec.toFixed(1)} | ${ratio(x.vsNative)} | ${ratio(x.vsPlainJs)} | ${ratio(x.vsTfjs)} | ${(x.ofMemcpy * 100).toFixed(0)} % |`,
    );
  }
  lines.push('');
  lines.push('Baselines, same run:');
  lines.push('');
  lines.push('| baseline | params | threads | step ms | params/s | GB/s |');
  lines.push('|---|---:|---:|---:|---:|---:|');
  for (const x of r.native.rows) lines.push(`| native C (OpenMP) | ${fmtCount(x.params)} | ${x.threads} | ${x.stepMs.toFixed(2)} | ${fmtRate(x.paramsPerSec)} | ${((x.paramsPerSec * kBytesPerParam) / 1e9).toFixed(1)} |`);
  for (const x of r.plainJs) lines.push(`| plain JS loop | ${fmtCount(x.params)} | 1 | ${x.stepMs.toFixed(1)} | ${fmtRate(x.paramsPerSec)} | ${((x.paramsPerSec * kBytesPerParam) / 1e9).toFixed(1)} |`);
  for (const x of r.tfjs) {
    lines.push(x.stepMs === undefined ? `| tfjs train.adam (wasm) | ${fmtCount(x.params)} | 1 | failed: ${x.error} | | |` : `| tfjs train.adam (wasm) | ${fmtCount(x.params)} | 1 | ${x.stepMs.toFixed(1)} | ${fmtRate(x.paramsPerSec!)} | ${((x.paramsPerSec! * kBytesPerParam) / 1e9).toFixed(1)} |`);
  }
  for (const c of r.memcpy) lines.push(`| memcpy probe (Float32Array.set, 512 MiB) | | ${c.threads} | | | ${c.gbPerSec.toFixed(1)} |`);
  lines.push('');
  lines.push(r.native.note);
  if (r.tfjs.length === 0) lines.push('tfjs not measured at these sizes (it is slow; it runs at 10 M by default: --tfjs-sizes).');
  if (r.latency) {
    const l = r.latency;
    lines.push('');
    lines.push(`Step latency, ${fmtCount(l.params)} params (median): inline ${l.inlineUs.toFixed(1)} µs (onNonFinite 'ignore': ${l.inlineIgnoreUs.toFixed(1)} µs), pool ${l.poolUs.toFixed(1)} µs ('ignore': ${l.poolIgnoreUs.toFixed(1)} µs), plain JS loop ${l.plainJsUs.toFixed(1)} µs.`);
    const h = l.heapBytesPerStep;
    lines.push(`JS heap allocated per step() (mean of ${h.steps}, no GC in between): inline ${h.inline.toFixed(0)} B, pool ${h.pool.toFixed(0)} B (its two pool round trips: task messages and promises).`);
    lines.push(`Inline vs pool sweep: ${l.sweep.map((s) => `${fmtCount(s.params)} ${s.inlineUs.toFixed(0)}/${s.poolUs.toFixed(0)} µs`).join(', ')}.`);
    lines.push(`Pool faster from ${l.recommendedInlineBelow === null ? 'no swept size' : `${l.recommendedInlineBelow} params`} on: inline below that.`);
  }
  lines.push('');
  lines.push(`Peak RSS: ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB (largest model ${fmtCount(Math.max(0, ...r.rows.map((x) => x.params)))} params: 16 B/param = ${((16 * Math.max(0, ...r.rows.map((x) => x.params))) / 2 ** 20).toFixed(0)} MiB).`);
  return lines.join('\n');
}

/** params/s against threads, one line per series (shardtrain per check policy, native), one panel per size. */
export async function chartSvg(r: BenchReport): Promise<string> {
  const values = [
    ...r.rows.map((x) => ({ size: fmtCount(x.params), threads: x.threads, paramsPerSec: x.paramsPerSec, series: `shardtrain (onNonFinite ${x.onNonFinite})` })),
    ...r.native.rows.map((x) => ({ size: fmtCount(x.params), threads: x.threads, paramsPerSec: x.paramsPerSec, series: 'native C OpenMP' })),
  ];
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'AdamW step: params/s vs threads',
    data: { values },
    facet: { column: { field: 'size', type: 'nominal', title: 'params' } },
    spec: {
      width: 260,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'threads', type: 'quantitative', axis: { tickMinStep: 1 } },
        y: { field: 'paramsPerSec', type: 'quantitative', title: 'params/s' },
        color: { field: 'series', type: 'nominal', title: null },
      },
    },
  };
  return vegaLiteSvg(spec);
}
