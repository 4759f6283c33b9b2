// From the runs to the summary: mean ± sample standard deviation over seeds for every (series, lr, λ) cell,
// summary.json (everything, curves included, so the plots can be redrawn) and summary.md (the tables).
// With one lr, a table row is a series; with several, a (series, lr) pair ("pytorch, lr 0.01"), and the
// lr × λ view per series is lr-grid.ts.

import { lrGridMarkdown, type LrGrid } from './lr-grid.js';
import type { RunResult } from './run-one.js';

export interface Stat {
  readonly mean: number;
  /** Sample standard deviation (n − 1); 0 for a single seed. */
  readonly std: number;
}

export interface Cell {
  readonly series: string;
  readonly convention: string;
  readonly exclusionExample: boolean;
  readonly lr: number;
  /** The weight-decay column's title. */
  readonly column: string;
  /** λ of the cell's runs (under a timescale, the one it gave at this lr and convention; mean over seeds). */
  readonly weightDecay: number;
  readonly lambdaNorm: number | null;
  readonly timescale: RunResult['timescale'];
  readonly seeds: number;
  /** Runs that stopped early (their numbers are left out of the means). */
  readonly failed: number;
  readonly trainLoss: Stat;
  readonly evalLoss: Stat;
  readonly weightNorm: Stat;
  readonly decayedNorm: Stat;
  readonly excludedNorm: Stat;
  readonly wallSec: Stat;
  /**
   * Held-out loss minus that of the first series (the first convention listed) at the same lr, λ and seed,
   * over seeds: a paired difference, free of the seed-to-seed spread that the ± of evalLoss carries.
   */
  readonly evalLossDelta: Stat;
  /** Held-out loss curve, mean over seeds, per evaluation step. */
  readonly curve: readonly { readonly step: number; readonly evalLoss: number }[];
}

export interface CompareSummary {
  readonly kind: string;
  readonly command: string;
  readonly config: { readonly path: string; readonly name: string | null; readonly model: unknown; readonly steps: number; readonly batchSize: number; readonly trainExamples: number; readonly evalExamples: number; readonly params: number };
  readonly optimizer: Record<string, unknown>;
  readonly seeds: readonly number[];
  readonly threads: number;
  /** The lr axis (the config's lr alone without --lr). */
  readonly lrs: readonly number[];
  readonly weightDecay: {
    readonly kind: 'plain' | 'normalized' | 'timescale';
    readonly values: readonly number[];
    /** With --normalized-weight-decay: λ = λ_norm·√(b/(B·T)), b batch, B training examples, T epochs. */
    readonly normalized?: { readonly batchSize: number; readonly datasetSize: number; readonly epochs: number; readonly lambdas: readonly number[] };
    /** With --timescale: τ_iter = τ·M, M = N/B iterations per epoch; each run's λ = 1/(r_peak·τ_iter). */
    readonly timescale?: { readonly batchSize: number; readonly datasetSize: number; readonly iterationsPerEpoch: number; readonly iterations: readonly number[] };
  };
  readonly exclusion: { readonly rule: string; readonly example: string | null };
  readonly normPartition: { readonly rule: string; readonly excluded: readonly string[]; readonly decayed: readonly string[] };
  readonly cells: readonly Cell[];
  /** Per series: held-out loss over lr × λ, with the best cell. */
  readonly grid: readonly LrGrid[];
  readonly runs: readonly RunResult[];
  readonly totalWallSec: number;
}

export function stat(xs: readonly number[]): Stat {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = ok.reduce((a, x) => a + x, 0) / ok.length;
  const std = ok.length < 2 ? 0 : Math.sqrt(ok.reduce((a, x) => a + (x - mean) ** 2, 0) / (ok.length - 1));
  return { mean, std };
}

/** One cell per (series, lr, λ column), in the order the series, lrs and columns first appear in the runs. */
export function aggregate(runs: readonly RunResult[]): Cell[] {
  const key = (r: { series: string; lr: number; column: string }) => `${r.series}\u0000${r.lr}\u0000${r.column}`;
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const g = groups.get(key(r));
    if (g) g.push(r);
    else groups.set(key(r), [r]);
  }
  const seriesOrder = [...new Set(runs.map((r) => r.series))];
  const lrOrder = [...new Set(runs.map((r) => r.lr))];
  const columnOrder = [...new Set(runs.map((r) => r.column))];
  const paired = (r: RunResult) => `${r.lr}\u0000${r.column}\u0000${r.seed}`;
  const first = new Map(runs.filter((r) => r.series === seriesOrder[0]).map((r) => [paired(r), r.evalLoss]));
  const cells = [...groups.values()].map((g): Cell => {
    const ok = g.filter((r) => r.error === null);
    const steps = [...new Set(g.flatMap((r) => r.curve.map((p) => p.step)))].sort((a, b) => a - b);
    return {
      series: g[0].series,
      convention: g[0].convention,
      exclusionExample: g[0].exclusionExample,
      lr: g[0].lr,
      column: g[0].column,
      weightDecay: stat(g.map((r) => r.weightDecay)).mean,
      lambdaNorm: g[0].lambdaNorm,
      timescale: g[0].timescale,
      seeds: g.length,
      failed: g.length - ok.length,
      trainLoss: stat(ok.map((r) => r.trainLoss)),
      evalLoss: stat(ok.map((r) => r.evalLoss)),
      weightNorm: stat(ok.map((r) => r.weightNorm)),
      decayedNorm: stat(ok.map((r) => r.decayedNorm)),
      excludedNorm: stat(ok.map((r) => r.excludedNorm)),
      wallSec: stat(g.map((r) => r.wallSec)),
      evalLossDelta: stat(ok.map((r) => r.evalLoss - (first.get(paired(r)) ?? Number.NaN))),
      curve: steps.map((step) => ({ step, evalLoss: stat(g.map((r) => r.curve.find((p) => p.step === step)?.evalLoss ?? Number.NaN)).mean })),
    };
  });
  const rank = (c: Cell) => [seriesOrder.indexOf(c.series), lrOrder.indexOf(c.lr), columnOrder.indexOf(c.column)];
  return cells.sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
}

/** JSON with NaN written as null (JSON has no NaN). */
export function summaryJson(summary: CompareSummary): string {
  return `${JSON.stringify(summary, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const pm = (s: Stat, digits = 4, seeds = 2) => (Number.isFinite(s.mean) ? (seeds > 1 ? `${fmt(s.mean, digits)} ± ${fmt(s.std, digits)}` : fmt(s.mean, digits)) : 'diverged');

/** A table row's title: the series, and its lr when the grid has more than one. */
export function rowLabel(c: Pick<Cell, 'series' | 'lr'>, lrs: number): string {
  return lrs > 1 ? `${c.series}, lr ${c.lr}` : c.series;
}

/** Rows (series, or series × lr) and columns in first-seen order. */
function axes(cells: readonly Cell[]): { lrs: number; rows: Array<{ series: string; lr: number; label: string }>; columns: string[] } {
  const lrs = new Set(cells.map((c) => c.lr)).size;
  const rows = [...new Map(cells.map((c) => [rowLabel(c, lrs), { series: c.series, lr: c.lr, label: rowLabel(c, lrs) }])).values()];
  return { lrs, rows, columns: [...new Set(cells.map((c) => c.column))] };
}

/** The final held-out loss table: one row per series (× lr), one column per λ (the heatmap as text). */
export function evalLossTable(cells: readonly Cell[]): string {
  const { rows, columns } = axes(cells);
  const best = new Map(columns.map((col) => [col, Math.min(...cells.filter((c) => c.column === col && !c.exclusionExample).map((c) => c.evalLoss.mean).filter(Number.isFinite))]));
  const lines = [`| convention | ${columns.join(' | ')} |`, `|---|${columns.map(() => '---:').join('|')}|`];
  for (const row of rows) {
    const entries = columns.map((col) => {
      const c = cells.find((x) => x.series === row.series && x.lr === row.lr && x.column === col);
      if (!c) return '';
      const text = pm(c.evalLoss, 4, c.seeds);
      return !c.exclusionExample && c.evalLoss.mean === best.get(col) ? `**${text}**` : text;
    });
    lines.push(`| ${row.label} | ${entries.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Held-out loss minus the first series' at the same lr, λ and seed (mean ± std over seeds). */
export function deltaTable(cells: readonly Cell[]): string {
  const { rows, columns } = axes(cells);
  const firstSeries = cells[0].series;
  const signed = (s: Stat, seeds: number) => {
    if (!Number.isFinite(s.mean)) return '—';
    const m = `${s.mean >= 0 ? '+' : '−'}${Math.abs(s.mean).toFixed(4)}`;
    return seeds > 1 ? `${m} ± ${s.std.toFixed(4)}` : m;
  };
  const lines = [`| convention − ${firstSeries} | ${columns.join(' | ')} |`, `|---|${columns.map(() => '---:').join('|')}|`];
  for (const row of rows.filter((r) => r.series !== firstSeries)) {
    const entries = columns.map((col) => {
      const c = cells.find((x) => x.series === row.series && x.lr === row.lr && x.column === col);
      return c ? signed(c.evalLossDelta, c.seeds) : '';
    });
    lines.push(`| ${row.label} | ${entries.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** λ as a detail-table entry: the column's own value, or what its timescale gave. */
function lambdaEntry(c: Cell): string {
  const λ = Number(c.weightDecay.toPrecision(4));
  if (c.timescale) return `τ ${c.timescale.epochs} ep → ${λ}`;
  return c.lambdaNorm === null ? String(λ) : `λn ${c.lambdaNorm} → ${λ}`;
}

/** Under a timescale axis: the λ each (series, lr) got per τ. */
function timescaleTable(cells: readonly Cell[]): string {
  const { rows, columns } = axes(cells);
  const lines = [`| λ from τ | ${columns.join(' | ')} |`, `|---|${columns.map(() => '---:').join('|')}|`];
  for (const row of rows) {
    const entries = columns.map((col) => {
      const c = cells.find((x) => x.series === row.series && x.lr === row.lr && x.column === col);
      return c ? c.weightDecay.toPrecision(4) : '';
    });
    lines.push(`| ${row.label} | ${entries.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Every cell with every number. */
export function detailTable(cells: readonly Cell[]): string {
  const lines = [
    '| convention | lr | λ | train loss | held-out loss | ‖θ‖ | ‖θ decayed‖ | ‖θ excluded‖ | wall s/run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of cells) {
    const failed = c.failed > 0 ? ` (${c.failed} of ${c.seeds} diverged)` : '';
    lines.push(
      `| ${c.series}${failed} | ${c.lr} | ${lambdaEntry(c)} | ${pm(c.trainLoss, 4, c.seeds)} | ${pm(c.evalLoss, 4, c.seeds)} | ${pm(c.weightNorm, 2, c.seeds)} | ${pm(c.decayedNorm, 2, c.seeds)} | ${pm(c.excludedNorm, 2, c.seeds)} | ${fmt(c.wallSec.mean, 1)} |`,
    );
  }
  return lines.join('\n');
}

export function summaryMarkdown(s: CompareSummary): string {
  const c = s.config;
  const o = s.optimizer;
  const seeds = s.seeds.length;
  const out: string[] = [
    `# shardtrain compare: ${c.name ?? c.path}`,
    '',
    '```',
    s.command,
    '```',
    '',
    `Model \`${JSON.stringify(c.model)}\`, ${c.params} parameters; ${c.trainExamples} training / ${c.evalExamples} held-out examples (seed ${s.seeds[0]}). ` +
      `${c.steps} steps of batch ${c.batchSize} per run on ${s.threads} threads; seeds ${s.seeds.join(', ')} (initial values, data split and data order); ` +
      `base lr ${s.lrs.join(', ')}. ` +
      `Shared optimizer settings: ${Object.entries(o).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ')}. ` +
      `Exclusion rule of the main runs: ${s.exclusion.rule}.`,
    '',
  ];
  if (s.weightDecay.normalized) {
    const n = s.weightDecay.normalized;
    out.push(
      `Normalized weight decay: λ = λn·√(b/(B·T)) with b = ${n.batchSize}, B = ${n.datasetSize} training examples, T = ${fmt(n.epochs, 3)} epochs ` +
        `→ ${s.weightDecay.values.map((v, i) => `λn ${v} → λ ${n.lambdas[i].toPrecision(3)}`).join(', ')}.`,
      '',
    );
  }
  if (s.weightDecay.timescale) {
    const t = s.weightDecay.timescale;
    out.push(
      `Weight decay from its timescale (Wang & Aitchison 2024): τ_iter = τ·M with M = N/B = ${t.datasetSize}/${t.batchSize} = ${fmt(t.iterationsPerEpoch, 3)} iterations per epoch ` +
        `(${s.weightDecay.values.map((v, i) => `τ ${v} epochs = ${fmt(t.iterations[i], 1)} iterations`).join(', ')}); each run's λ = 1/(r_peak·τ_iter), r_peak what multiplies λ in its ` +
        "convention's decay rate at the schedule's peak (the peak lr for decay by lr_t·λ, the peak multiplier for `paper`, 1 for `tf-sgd-decay`). The λ each gave:",
      '',
      timescaleTable(s.cells),
      '',
    );
  }
  out.push(
    `## Final held-out loss (mean${seeds > 1 ? ' ± std' : ''} over ${seeds} seed${seeds > 1 ? 's' : ''}; lowest per column in bold)`,
    '',
    evalLossTable(s.cells),
    '',
    ...(new Set(s.cells.map((c) => c.series)).size > 1
      ? [
          `## Paired by seed: held-out loss minus ${s.cells[0].series}'s (same lr, same λ, same seed; mean${seeds > 1 ? ' ± std' : ''} over seeds)`,
          '',
          deltaTable(s.cells),
          '',
        ]
      : []),
    '![held-out loss curves](loss.svg)',
    '',
    '![final held-out loss](heatmap.svg)',
    '',
    ...(s.lrs.length > 1 ? [lrGridMarkdown(s.grid, seeds), '', '![held-out loss over lr × λ, one panel per convention](lr-heatmap.svg)', ''] : []),
    '## Every cell',
    '',
    `Train loss: mean training-batch loss over the last tenth of the steps. ‖θ‖: global L2 norm of the parameters after the last step; ` +
      `"decayed" / "excluded" split the tensors by ${s.normPartition.rule} (excluded: ${s.normPartition.excluded.join(', ') || 'none'}), the same split for every row.`,
    '',
    detailTable(s.cells),
    '',
  );
  if (s.exclusion.example) {
    out.push('## Exclusion rule', '', s.exclusion.example, '');
  }
  {
    const failures = s.runs.filter((r) => r.error !== null);
    if (failures.length > 0) out.push('## Runs that stopped early', '', ...failures.map((r) => `- ${r.series}, lr ${r.lr}, ${r.column}, seed ${r.seed}: ${r.error}`), '');
  }
  out.push(`Total wall time ${fmt(s.totalWallSec, 0)} s for ${s.runs.length} runs.`, '');
  return out.join('\n');
}
