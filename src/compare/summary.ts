// From the runs to the summary: mean ± sample standard deviation over seeds for every (series, λ) cell,
// summary.json (everything, curves included, so the plots can be redrawn) and summary.md (the tables).

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
  readonly weightDecay: number;
  readonly lambdaNorm: number | null;
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
   * Held-out loss minus that of the first series (the first convention listed) at the same λ and seed, over
   * seeds: a paired difference, free of the seed-to-seed spread that the ± of evalLoss carries.
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
  readonly weightDecay: {
    readonly kind: 'plain' | 'normalized';
    readonly values: readonly number[];
    /** With --normalized-weight-decay: λ = λ_norm·√(b/(B·T)), b batch, B training examples, T epochs. */
    readonly normalized?: { readonly batchSize: number; readonly datasetSize: number; readonly epochs: number; readonly lambdas: readonly number[] };
  };
  readonly exclusion: { readonly rule: string; readonly example: string | null };
  readonly normPartition: { readonly rule: string; readonly excluded: readonly string[]; readonly decayed: readonly string[] };
  readonly cells: readonly Cell[];
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

/** One cell per (series, λ), in the order the series and λ first appear in the runs. */
export function aggregate(runs: readonly RunResult[]): Cell[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const key = `${r.series}\u0000${r.weightDecay}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  const seriesOrder = [...new Set(runs.map((r) => r.series))];
  const decayOrder = [...new Set(runs.map((r) => r.weightDecay))];
  const first = new Map(runs.filter((r) => r.series === seriesOrder[0]).map((r) => [`${r.weightDecay}\u0000${r.seed}`, r.evalLoss]));
  const cells = [...groups.values()].map((g): Cell => {
    const ok = g.filter((r) => r.error === null);
    const steps = [...new Set(g.flatMap((r) => r.curve.map((p) => p.step)))].sort((a, b) => a - b);
    return {
      series: g[0].series,
      convention: g[0].convention,
      exclusionExample: g[0].exclusionExample,
      weightDecay: g[0].weightDecay,
      lambdaNorm: g[0].lambdaNorm,
      seeds: g.length,
      failed: g.length - ok.length,
      trainLoss: stat(ok.map((r) => r.trainLoss)),
      evalLoss: stat(ok.map((r) => r.evalLoss)),
      weightNorm: stat(ok.map((r) => r.weightNorm)),
      decayedNorm: stat(ok.map((r) => r.decayedNorm)),
      excludedNorm: stat(ok.map((r) => r.excludedNorm)),
      wallSec: stat(g.map((r) => r.wallSec)),
      evalLossDelta: stat(ok.map((r) => r.evalLoss - (first.get(`${r.weightDecay}\u0000${r.seed}`) ?? Number.NaN))),
      curve: steps.map((step) => ({ step, evalLoss: stat(g.map((r) => r.curve.find((p) => p.step === step)?.evalLoss ?? Number.NaN)).mean })),
    };
  });
  return cells.sort((a, b) => seriesOrder.indexOf(a.series) - seriesOrder.indexOf(b.series) || decayOrder.indexOf(a.weightDecay) - decayOrder.indexOf(b.weightDecay));
}

/** JSON with NaN written as null (JSON has no NaN). */
export function summaryJson(summary: CompareSummary): string {
  return `${JSON.stringify(summary, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const pm = (s: Stat, digits = 4, seeds = 2) => (Number.isFinite(s.mean) ? (seeds > 1 ? `${fmt(s.mean, digits)} ± ${fmt(s.std, digits)}` : fmt(s.mean, digits)) : 'diverged');

/** λ as a column title: "λ = 0.01", and "λ_n = 0.05 → λ = 0.0029" for normalized decay. */
export function decayLabel(weightDecay: number, lambdaNorm: number | null): string {
  const short = (x: number) => (x === 0 ? '0' : Math.abs(x) >= 1e-3 ? String(Number(x.toPrecision(3))) : x.toExponential(1).replace('e-', 'e-'));
  return lambdaNorm === null ? `λ = ${short(weightDecay)}` : `λn = ${short(lambdaNorm)} (λ = ${short(weightDecay)})`;
}

/** The final held-out loss table: one row per series, one column per λ (the heatmap as text). */
export function evalLossTable(cells: readonly Cell[]): string {
  const series = [...new Set(cells.map((c) => c.series))];
  const decays = [...new Map(cells.map((c) => [c.weightDecay, c.lambdaNorm] as const)).entries()];
  const best = new Map<number, number>();
  for (const [wd] of decays) best.set(wd, Math.min(...cells.filter((c) => c.weightDecay === wd && !c.exclusionExample).map((c) => c.evalLoss.mean).filter(Number.isFinite)));
  const lines = [`| convention | ${decays.map(([wd, n]) => decayLabel(wd, n)).join(' | ')} |`, `|---|${decays.map(() => '---:').join('|')}|`];
  for (const s of series) {
    const row = decays.map(([wd]) => {
      const c = cells.find((x) => x.series === s && x.weightDecay === wd);
      if (!c) return '';
      const text = pm(c.evalLoss, 4, c.seeds);
      return !c.exclusionExample && c.evalLoss.mean === best.get(wd) ? `**${text}**` : text;
    });
    lines.push(`| ${s} | ${row.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Held-out loss minus the first series' at the same λ and seed (mean ± std over seeds). */
export function deltaTable(cells: readonly Cell[]): string {
  const series = [...new Set(cells.map((c) => c.series))];
  const decays = [...new Map(cells.map((c) => [c.weightDecay, c.lambdaNorm] as const)).entries()];
  const signed = (s: Stat, seeds: number) => {
    if (!Number.isFinite(s.mean)) return '—';
    const m = `${s.mean >= 0 ? '+' : '−'}${Math.abs(s.mean).toFixed(4)}`;
    return seeds > 1 ? `${m} ± ${s.std.toFixed(4)}` : m;
  };
  const lines = [`| convention − ${series[0]} | ${decays.map(([wd, n]) => decayLabel(wd, n)).join(' | ')} |`, `|---|${decays.map(() => '---:').join('|')}|`];
  for (const s of series.slice(1)) {
    const row = decays.map(([wd]) => {
      const c = cells.find((x) => x.series === s && x.weightDecay === wd);
      return c ? signed(c.evalLossDelta, c.seeds) : '';
    });
    lines.push(`| ${s} | ${row.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Every cell with every number. */
export function detailTable(cells: readonly Cell[]): string {
  const lines = [
    '| convention | λ | train loss | held-out loss | ‖θ‖ | ‖θ decayed‖ | ‖θ excluded‖ | wall s/run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of cells) {
    const failed = c.failed > 0 ? ` (${c.failed} of ${c.seeds} diverged)` : '';
    lines.push(
      `| ${c.series}${failed} | ${decayLabel(c.weightDecay, c.lambdaNorm).replace(/^λ = /, '')} | ${pm(c.trainLoss, 4, c.seeds)} | ${pm(c.evalLoss, 4, c.seeds)} | ${pm(c.weightNorm, 2, c.seeds)} | ${pm(c.decayedNorm, 2, c.seeds)} | ${pm(c.excludedNorm, 2, c.seeds)} | ${fmt(c.wallSec.mean, 1)} |`,
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
      `${c.steps} steps of batch ${c.batchSize} per run on ${s.threads} threads; seeds ${s.seeds.join(', ')} (initial values, data split and data order). ` +
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
  out.push(
    `## Final held-out loss (mean${seeds > 1 ? ' ± std' : ''} over ${seeds} seed${seeds > 1 ? 's' : ''}; lowest per column in bold)`,
    '',
    evalLossTable(s.cells),
    '',
    ...(new Set(s.cells.map((c) => c.series)).size > 1
      ? [
          `## Paired by seed: held-out loss minus ${s.cells[0].series}'s (same λ, same seed; mean${seeds > 1 ? ' ± std' : ''} over seeds)`,
          '',
          deltaTable(s.cells),
          '',
        ]
      : []),
    '![held-out loss curves](loss.svg)',
    '',
    '![final held-out loss](heatmap.svg)',
    '',
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
    if (failures.length > 0) out.push('## Runs that stopped early', '', ...failures.map((r) => `- ${r.series}, λ ${r.weightDecay}, seed ${r.seed}: ${r.error}`), '');
  }
  out.push(`Total wall time ${fmt(s.totalWallSec, 0)} s for ${s.runs.length} runs.`, '');
  return out.join('\n');
}
