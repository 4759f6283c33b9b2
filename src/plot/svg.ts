// Charts as SVG text, rendered headless: vega-lite spec → vega spec → a vega View with no renderer (no
// canvas, no browser). Used for loss curves, the compare plots and the bench chart.

import * as vega from 'vega';
import * as vl from 'vega-lite';

export async function vegaLiteSvg(spec: object): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec as vl.TopLevelSpec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
