// The two pictures of a compare, rendered headless (vega-lite → vega → SVG, no canvas):
//   loss.svg     held-out loss against step (mean over seeds), one colour per convention, one panel per λ;
//   heatmap.svg  final held-out loss (mean over seeds), convention × λ, the number printed in each cell.

import { vegaLiteSvg as render } from '../plot/svg.js';
import { decayLabel, type Cell } from './summary.js';

/** Series in legend order, λ labels in column order. */
function orders(cells: readonly Cell[]): { series: string[]; decays: string[] } {
  return { series: [...new Set(cells.map((c) => c.series))], decays: [...new Set(cells.map((c) => decayLabel(c.weightDecay, c.lambdaNorm)))] };
}

export async function lossCurvesSvg(cells: readonly Cell[], title: string): Promise<string> {
  const { series, decays } = orders(cells);
  const values = cells.flatMap((c) =>
    c.curve.filter((p) => Number.isFinite(p.evalLoss)).map((p) => ({ step: p.step, loss: p.evalLoss, series: c.series, decay: decayLabel(c.weightDecay, c.lambdaNorm), example: c.exclusionExample })),
  );
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: { column: { field: 'decay', type: 'ordinal', sort: decays, title: null } },
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
  const { series, decays } = orders(cells);
  const values = cells.map((c) => ({
    series: c.series,
    decay: decayLabel(c.weightDecay, c.lambdaNorm),
    loss: Number.isFinite(c.evalLoss.mean) ? c.evalLoss.mean : null,
    label: Number.isFinite(c.evalLoss.mean) ? c.evalLoss.mean.toFixed(3) : 'diverged',
  }));
  // Reversed viridis: low loss is yellow, high is purple; the label is dark on the light half.
  const finite = values.map((v) => v.loss).filter((v): v is number => v !== null);
  const mid = finite.length > 0 ? (Math.min(...finite) + Math.max(...finite)) / 2 : 0;
  const x = { field: 'decay', type: 'ordinal', sort: decays, title: 'weight decay', axis: { labelAngle: 0 } };
  const y = { field: 'series', type: 'ordinal', sort: series, title: null };
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    width: { step: 120 },
    height: { step: 28 },
    layer: [
      {
        mark: 'rect',
        encoding: {
          x,
          y,
          color: { field: 'loss', type: 'quantitative', title: 'held-out loss', scale: { scheme: 'viridis', reverse: true, zero: false } },
        },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: { x, y, text: { field: 'label' }, color: { condition: { test: `datum.loss !== null && datum.loss < ${mid}`, value: 'black' }, value: 'white' } },
      },
    ],
  });
}
