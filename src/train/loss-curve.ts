// The loss curve of a run, rendered to SVG headless (vega-lite → vega spec → vega View with no renderer,
// no canvas needed).

import { vegaLiteSvg } from '../plot/svg.js';

export interface CurvePoint {
  readonly step: number;
  readonly loss: number;
  /** 'train' (batch loss) or 'eval' (held-out loss). */
  readonly series: string;
}

/** SVG text of loss against step, one line per series. */
export async function lossCurveSvg(points: readonly CurvePoint[], title: string): Promise<string> {
  const line = {
    data: { values: points as CurvePoint[] },
    mark: { type: 'line', point: points.length < 60 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 360,
    layer: [line],
  };
  return vegaLiteSvg(spec);
}
