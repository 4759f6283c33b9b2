// The lr × λ view of a compare, per series (the shape of Figure 2 of Loshchilov & Hutter: with L2 the best λ
// moves with the lr; with decoupled decay it should not): held-out loss, mean over seeds, in a matrix of
// rows = base lr and columns = the weight-decay axis (λ, λ_norm or τ), and the best cell.

/** What the grid reads of a summary cell (summary.ts's Cell has these and more; it imports this file). */
export interface GridCell {
  readonly series: string;
  readonly convention: string;
  readonly lr: number;
  readonly column: string;
  readonly weightDecay: number;
  readonly evalLoss: { readonly mean: number; readonly std: number };
}

export interface LrGrid {
  readonly series: string;
  readonly convention: string;
  readonly lrs: readonly number[];
  readonly columns: readonly string[];
  /** evalLoss[i][j]: lr i, column j; null where the cell is missing or every seed diverged. */
  readonly evalLoss: readonly (readonly (number | null)[])[];
  readonly evalLossStd: readonly (readonly (number | null)[])[];
  /** λ the cell's runs used (differs along a row under a timescale axis). */
  readonly weightDecay: readonly (readonly (number | null)[])[];
  /** The lowest mean held-out loss, or null when every cell diverged. */
  readonly best: { readonly lr: number; readonly column: string; readonly weightDecay: number; readonly evalLoss: number } | null;
}

const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);

/** One grid per series, series in first-seen order; lrs and columns in the cells' order. */
export function lrGrids(cells: readonly GridCell[]): LrGrid[] {
  const lrs = [...new Set(cells.map((c) => c.lr))];
  const columns = [...new Set(cells.map((c) => c.column))];
  return [...new Set(cells.map((c) => c.series))].map((series): LrGrid => {
    const mine = cells.filter((c) => c.series === series);
    const at = (lr: number, column: string) => mine.find((c) => c.lr === lr && c.column === column);
    const matrix = (f: (c: GridCell) => number) =>
      lrs.map((lr) =>
        columns.map((col) => {
          const c = at(lr, col);
          return c ? finiteOrNull(f(c)) : null;
        }),
      );
    let best: LrGrid['best'] = null;
    for (const c of mine) {
      if (Number.isFinite(c.evalLoss.mean) && (best === null || c.evalLoss.mean < best.evalLoss)) best = { lr: c.lr, column: c.column, weightDecay: c.weightDecay, evalLoss: c.evalLoss.mean };
    }
    return {
      series,
      convention: mine[0].convention,
      lrs,
      columns,
      evalLoss: matrix((c) => c.evalLoss.mean),
      evalLossStd: matrix((c) => c.evalLoss.std),
      weightDecay: matrix((c) => c.weightDecay),
      best,
    };
  });
}

function entry(mean: number | null, std: number | null, seeds: number): string {
  if (mean === null) return 'diverged';
  return seeds > 1 && std !== null ? `${mean.toFixed(4)} ± ${std.toFixed(4)}` : mean.toFixed(4);
}

/** summary.md's section: one table per series, rows lr, columns λ, the best cell bold with a ★. */
export function lrGridMarkdown(grids: readonly LrGrid[], seeds: number): string {
  const out = [`## Held-out loss over lr × weight decay, per convention (mean${seeds > 1 ? ' ± std' : ''} over ${seeds} seed${seeds > 1 ? 's' : ''}; ★ the best cell)`, ''];
  for (const g of grids) {
    // The λ is said apart only where the column is not a plain λ (λ_norm, τ).
    const lambda = (b: NonNullable<LrGrid['best']>) => (b.column.startsWith('λ =') ? '' : ` (λ ${Number(b.weightDecay.toPrecision(4))})`);
    const best = g.best === null ? 'every cell diverged' : `best: lr ${g.best.lr}, ${g.best.column}${lambda(g.best)}, held-out ${g.best.evalLoss.toFixed(4)}`;
    out.push(`**${g.series}** — ${best}`, '', `| lr | ${g.columns.join(' | ')} |`, `|---:|${g.columns.map(() => '---:').join('|')}|`);
    g.lrs.forEach((lr, i) => {
      const row = g.columns.map((col, j) => {
        const text = entry(g.evalLoss[i][j], g.evalLossStd[i][j], seeds);
        return g.best !== null && g.best.lr === lr && g.best.column === col ? `**★ ${text}**` : text;
      });
      out.push(`| ${lr} | ${row.join(' | ')} |`);
    });
    out.push('');
  }
  return out.join('\n').trimEnd();
}
