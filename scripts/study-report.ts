// `node dist/scripts/study-report.js DIR… [--baseline pytorch] [--out FILE]`: the weight-decay study's tables
// across several `shardtrain compare` outputs (docs/which-weight-decay/README.md quotes them; scripts/study.sh
// runs the compares and then this). A compare holds one λ (or τ) list; the study needs several, because a λ
// means a different decay per step in each convention (lr_t·λ for pytorch, η_t·λ for paper, λ for
// tf-sgd-decay), so its λ grids are separate compares of the same config and seeds. Runs of one seed share the
// initial values and the data order across compares (they are deterministic), so pairing by seed still holds.
//
// A view is (axis, run length): the λ grids of one length merged, or the τ grid of one length. Per view:
//   best      each series' best cell (lowest held-out loss, mean over seeds), its spread over seeds, the paired
//             difference to the baseline's best cell, and to the series' own best cell at λ = 0;
//   per lr    the best λ (or τ) at each lr: does it move with the lr?
// Across views of one axis: transfer — the value best at the reference setting (the middle lr, the longest
// run), used at every other (lr, length): how much worse it is there than that setting's best value.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CompareSummary } from '../src/compare/index.js';

interface Run {
  readonly series: string;
  readonly lr: number;
  /** λ (λ axis) or τ in epochs (τ axis). */
  readonly value: number;
  /** λ the run used (the τ's λ under a τ axis). */
  readonly lambda: number;
  readonly seed: number;
  /** NaN when the run stopped early (summary.json writes NaN as null). */
  readonly loss: number;
}

interface View {
  readonly axis: 'λ' | 'τ';
  readonly steps: number;
  readonly epochs: number;
  readonly runs: Run[];
}

interface CellStat {
  readonly lr: number;
  readonly value: number;
  readonly lambda: number;
  readonly mean: number;
  readonly std: number;
  /** Loss per seed. */
  readonly bySeed: ReadonlyMap<number, number>;
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function stat(xs: readonly number[]): { mean: number; std: number } {
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) return { mean: Number.NaN, std: Number.NaN };
  const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
  const std = xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
  return { mean, std };
}

function load(dirs: readonly string[]): { views: View[]; summaries: Array<{ dir: string; s: CompareSummary }> } {
  const summaries = dirs.map((dir) => ({ dir, s: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as CompareSummary }));
  const views = new Map<string, View>();
  for (const { dir, s } of summaries) {
    if (s.weightDecay.kind === 'normalized') throw new Error(`${dir}: a normalized-weight-decay compare has no place in the study`);
    const axis = s.weightDecay.kind === 'timescale' ? 'τ' : 'λ';
    const key = `${axis} ${s.config.steps}`;
    const view = views.get(key) ?? { axis, steps: s.config.steps, epochs: (s.config.steps * s.config.batchSize) / s.config.trainExamples, runs: [] };
    views.set(key, view);
    for (const r of s.runs) {
      if (r.exclusionExample) continue;
      const value = axis === 'τ' ? r.timescale!.epochs : r.weightDecay;
      view.runs.push({ series: r.series, lr: r.lr, value, lambda: r.weightDecay, seed: r.seed, loss: r.evalLoss ?? Number.NaN });
    }
  }
  return { views: [...views.values()].sort((a, b) => a.axis.localeCompare(b.axis) || b.steps - a.steps), summaries };
}

const uniq = <T>(xs: readonly T[]) => [...new Set(xs)];

/** Every (lr, value) cell of one series in a view, mean ± std over seeds. */
function cellsOf(view: View, series: string): CellStat[] {
  const mine = view.runs.filter((r) => r.series === series);
  const out: CellStat[] = [];
  for (const lr of uniq(mine.map((r) => r.lr))) {
    for (const value of uniq(mine.filter((r) => r.lr === lr).map((r) => r.value))) {
      const g = mine.filter((r) => r.lr === lr && r.value === value);
      out.push({ lr, value, lambda: stat(g.map((r) => r.lambda)).mean, ...stat(g.map((r) => r.loss)), bySeed: new Map(g.map((r) => [r.seed, r.loss])) });
    }
  }
  return out;
}

/** The lowest mean; a cell where any seed diverged is not a candidate. */
function bestOf(cells: readonly CellStat[]): CellStat | undefined {
  return cells.filter((c) => Number.isFinite(c.mean)).reduce<CellStat | undefined>((b, c) => (b === undefined || c.mean < b.mean ? c : b), undefined);
}

/** a − b paired by seed, mean ± std over the seeds both have. */
function paired(a: CellStat, b: CellStat): { mean: number; std: number } {
  return stat([...a.bySeed.keys()].filter((s) => b.bySeed.has(s)).map((s) => a.bySeed.get(s)! - b.bySeed.get(s)!));
}

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '—');
const signed = (d: { mean: number; std: number }) => (Number.isFinite(d.mean) ? `${d.mean >= 0 ? '+' : '−'}${Math.abs(d.mean).toFixed(4)} ± ${d.std.toFixed(4)}` : '—');
const num = (x: number) => String(Number(x.toPrecision(3)));
const where = (v: View, c: CellStat) => `lr ${c.lr}, ${v.axis} ${num(c.value)}${v.axis === 'τ' ? ` ep (λ ${num(c.lambda)})` : ''}`;

function bestTable(view: View, zero: View | undefined, baseline: string): string[] {
  const series = uniq(view.runs.map((r) => r.series));
  const base = bestOf(cellsOf(view, baseline));
  const lines = [
    `| series | best cell | held-out (mean ± std over seeds) | − ${baseline}'s best, paired | best at λ = 0 | best − λ = 0, paired |`,
    '|---|---|---:|---:|---|---:|',
  ];
  for (const name of series) {
    const b = bestOf(cellsOf(view, name));
    if (!b) {
      lines.push(`| ${name} | every cell diverged | | | | |`);
      continue;
    }
    const z = zero ? bestOf(cellsOf(zero, name).filter((c) => c.value === 0)) : undefined;
    const vsBase = base && name !== baseline ? signed(paired(b, base)) : '';
    const zText = z ? `lr ${z.lr}: ${f4(z.mean)} ± ${f4(z.std)}` : '—';
    lines.push(`| ${name} | ${where(view, b)} | ${f4(b.mean)} ± ${f4(b.std)} | ${vsBase} | ${zText} | ${z ? signed(paired(b, z)) : '—'} |`);
  }
  return lines;
}

function perLrTable(view: View): string[] {
  const lrs = uniq(view.runs.map((r) => r.lr)).sort((a, b) => a - b);
  const lines = [`| series | ${lrs.map((lr) => `lr ${lr}`).join(' | ')} |`, `|---|${lrs.map(() => '---:').join('|')}|`];
  for (const name of uniq(view.runs.map((r) => r.series))) {
    const cells = cellsOf(view, name);
    const entries = lrs.map((lr) => {
      const b = bestOf(cells.filter((c) => c.lr === lr));
      return b ? `${view.axis} ${num(b.value)}${view.axis === 'τ' ? ` (λ ${num(b.lambda)})` : ''}: ${f4(b.mean)}` : '—';
    });
    lines.push(`| ${name} | ${entries.join(' | ')} |`);
  }
  return lines;
}

/**
 * The value best at the reference setting (middle lr of the longest run), kept at every (lr, length): its
 * mean loss there minus that setting's best mean (0 when it is that setting's best too).
 */
function transferTable(views: readonly View[]): string[] {
  const longest = views.reduce((a, v) => (v.steps > a.steps ? v : a));
  const lrs = uniq(longest.runs.map((r) => r.lr)).sort((a, b) => a - b);
  const ref = lrs[Math.floor(lrs.length / 2)];
  const settings = views.flatMap((v) => uniq(v.runs.map((r) => r.lr)).sort((a, b) => a - b).map((lr) => ({ v, lr })));
  const lines = [
    `Reference: lr ${ref}, ${longest.steps} steps. Entries: the loss of the reference's best ${longest.axis} at that setting minus the best ${longest.axis} there (0.0000: it is the best there too).`,
    '',
    `| series | ${longest.axis} best at the reference | ${settings.map((s) => `lr ${s.lr}, ${s.v.steps} st.`).join(' | ')} | worst |`,
    `|---|---:|${settings.map(() => '---:').join('|')}|---:|`,
  ];
  for (const name of uniq(longest.runs.map((r) => r.series))) {
    const star = bestOf(cellsOf(longest, name).filter((c) => c.lr === ref));
    if (!star) continue;
    let worst = 0;
    const entries = settings.map(({ v, lr }) => {
      const here = cellsOf(v, name).filter((c) => c.lr === lr);
      const kept = here.find((c) => c.value === star.value);
      const best = bestOf(here);
      if (!kept || !best) return '—';
      const regret = Number.isFinite(kept.mean) ? kept.mean - best.mean : Number.POSITIVE_INFINITY;
      worst = Math.max(worst, regret);
      return Number.isFinite(regret) ? `+${regret.toFixed(4)}` : 'diverged';
    });
    lines.push(`| ${name} | ${num(star.value)} | ${entries.join(' | ')} | ${Number.isFinite(worst) ? `+${worst.toFixed(4)}` : 'diverged'} |`);
  }
  return lines;
}

function main(): void {
  const dirs = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  if (dirs.length === 0) throw new Error('study-report: give the compare output directories, e.g. docs/which-weight-decay/lambda-1500-a');
  const baseline = flag('--baseline') ?? 'pytorch';
  const { views, summaries } = load(dirs);
  const out: string[] = ['# The weight-decay study: tables across its compares', '', 'Written by `node dist/scripts/study-report.js` from:', ''];
  for (const { dir, s } of summaries) out.push(`- \`${dir}\`: \`${s.command}\` — ${s.runs.length} runs, ${s.totalWallSec.toFixed(0)} s`);
  const total = summaries.reduce((a, x) => a + x.s.totalWallSec, 0);
  out.push('', `Wall time of the runs: ${total.toFixed(0)} s (${(total / 60).toFixed(1)} min) for ${summaries.reduce((a, x) => a + x.s.runs.length, 0)} runs.`, '');
  for (const v of views) {
    const zero = views.find((z) => z.axis === 'λ' && z.steps === v.steps);
    out.push(`## ${v.axis === 'λ' ? 'λ grid' : 'τ grid (λ from a timescale in epochs)'}, ${v.steps} steps (${v.epochs.toFixed(1)} epochs)`, '');
    out.push('Best cell per series (mean over seeds); paired differences are per seed, mean ± std over seeds:', '', ...bestTable(v, zero, baseline), '');
    out.push(`Best ${v.axis} at each lr (held-out, mean over seeds):`, '', ...perLrTable(v), '');
  }
  for (const axis of ['λ', 'τ'] as const) {
    const mine = views.filter((v) => v.axis === axis);
    if (mine.length === 0) continue;
    out.push(`## Transfer of a ${axis === 'λ' ? 'raw λ' : 'τ (epochs)'} across lr and run length`, '', ...transferTable(mine), '');
  }
  const text = `${out.join('\n').trimEnd()}\n`;
  const file = flag('--out');
  if (file) writeFileSync(file, text);
  else process.stdout.write(text);
}

main();
