// The pictures of a compare, rendered headless (vega-lite → vega → SVG, no canvas):
//   loss.svg        held-out loss against step (mean over seeds), one colour per convention, one panel per λ
//                   (and one row of panels per lr when there are several);
//   heatmap.svg     final held-out loss (mean over seeds), convention (× lr) × λ, the number in each cell;
//   lr-heatmap.svg  with several lrs: one panel per convention, lr × λ, the best cell starred and outlined.

import { vegaLiteSvg as render } from '../plot/svg.js';
import type { LrGrid } from './lr-grid.js';
import { rowLabel, type Cell } from './summary.js';

/** Series in legend order, column titles in column order, lrs in row order. */
function orders(cells: readonly Cell[]): { series: string[]; columns: string[]; lrs: number[] } {
  return { series: [...new Set(cells.map((c) => c.series))], columns: [...new Set(cells.map((c) => c.column))], lrs: [...new Set(cells.map((c) => c.lr))] };
}

/** Reversed viridis: low loss is yellow, high is purple; a label is dark on the light half. */
const lossColor = { field: 'loss', type: 'quantitative', title: 'held-out loss', scale: { scheme: 'viridis', reverse: true, zero: false } };
const labelColor = { condition: { test: 'datum.light', value: 'black' }, value: 'white' };

/** Whether each loss lies on the light (low) half of [min, max] of `losses`. */
function lightHalf(losses: readonly (number | null)[]): (loss: number | null) => boolean {
  const finite = losses.filter((v): v is number => v !== null);
  const mid = finite.length > 0 ? (Math.min(...finite) + Math.max(...finite)) / 2 : 0;
  return (loss) => loss !== null && loss < mid;
}

export async function lossCurvesSvg(cells: readonly Cell[], title: string): Promise<string> {
  const { series, columns, lrs } = orders(cells);
  const values = cells.flatMap((c) =>
    c.curve.filter((p) => Number.isFinite(p.evalLoss)).map((p) => ({ step: p.step, loss: p.evalLoss, series: c.series, decay: c.column, lr: `lr ${c.lr}`, example: c.exclusionExample })),
  );
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: {
      column: { field: 'decay', type: 'ordinal', sort: columns, title: null },
      ...(lrs.length > 1 ? { row: { field: 'lr', type: 'ordinal', sort: lrs.map((lr) => `lr ${lr}`), title: null } } : {}),
    },
    spec: {
      width: 230,
      height: 220,
      mark: { type: 'line', point: { size: 14 }, strokeWidth: 1.5 },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'step' },
        y: { field: 'loss', type: 'quantitative', title: 'held-out loss', scale: { zero: false } },
        color: { field: 'series', type: 'nominal', sort: series, title: 'convention', scale: { scheme: 'tableau10' }, legend: { labelLimit: 280 } },
        strokeDash: { field: 'example', type: 'nominal', legend: null, scale: { domain: [false, true], range: [[1, 0], [5, 3]] } },
      },
    },
    // Panels keep their own y range: one diverging convention must not flatten the others.
    resolve: { scale: { y: 'independent' } },
  });
}

export async function heatmapSvg(cells: readonly Cell[], title: string): Promise<string> {
  const { columns, lrs } = orders(cells);
  const rows = [...new Set(cells.map((c) => rowLabel(c, lrs.length)))];
  const losses = cells.map((c) => (Number.isFinite(c.evalLoss.mean) ? c.evalLoss.mean : null));
  const light = lightHalf(losses);
  const values = cells.map((c, i) => ({
    row: rowLabel(c, lrs.length),
    decay: c.column,
    loss: losses[i],
    light: light(losses[i]),
    label: losses[i] === null ? 'diverged' : losses[i]!.toFixed(3),
  }));
  const x = { field: 'decay', type: 'ordinal', sort: columns, title: 'weight decay', axis: { labelAngle: 0 } };
  const y = { field: 'row', type: 'ordinal', sort: rows, title: null };
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    width: { step: 120 },
    height: { step: 28 },
    layer: [
      { mark: 'rect', encoding: { x, y, color: lossColor } },
      { mark: { type: 'text', fontSize: 11 }, encoding: { x, y, text: { field: 'label' }, color: labelColor } },
    ],
  });
}

/** One panel per series: rows lr, columns λ (or τ), colour the held-out loss on the panel's own scale, ★ the best. */
export async function lrHeatmapSvg(grids: readonly LrGrid[], title: string): Promise<string> {
  const values = grids.flatMap((g) => {
    const light = lightHalf(g.evalLoss.flat());
    return g.lrs.flatMap((lr, i) =>
      g.columns.map((column, j) => {
        const loss = g.evalLoss[i][j];
        const best = g.best !== null && g.best.lr === lr && g.best.column === column;
        return { series: g.series, lr: String(lr), decay: column, loss, light: light(loss), best, label: `${best ? '★ ' : ''}${loss === null ? 'diverged' : loss.toFixed(3)}` };
      }),
    );
  });
  const lrs = grids[0]?.lrs.map(String) ?? [];
  const x = { field: 'decay', type: 'ordinal', sort: grids[0]?.columns ?? [], title: 'weight decay', axis: { labelAngle: 0 } };
  const y = { field: 'lr', type: 'ordinal', sort: lrs, title: 'base lr' };
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: { field: 'series', type: 'ordinal', sort: grids.map((g) => g.series), title: null, header: { labelFontSize: 12 } },
    columns: 3,
    spec: {
      width: { step: 90 },
      height: { step: 28 },
      layer: [
        { mark: 'rect', encoding: { x, y, color: lossColor } },
        // The best cell of each panel: outlined in red, and its label starred (the ★ also reads in grey print).
        { transform: [{ filter: 'datum.best' }], mark: { type: 'rect', fill: null, stroke: '#d62728', strokeWidth: 2.5 }, encoding: { x, y } },
        { mark: { type: 'text', fontSize: 10 }, encoding: { x, y, text: { field: 'label' }, color: labelColor } },
      ],
    },
    // Each convention on its own colour scale: the question is where its best cell lies, not how it compares.
    resolve: { scale: { color: 'independent' } },
  });
}
