// Charts as SVG text, rendered headless: vega-lite spec → vega spec → a vega View with no renderer (no
// canvas, no browser). Used for loss curves, the compare plots and the bench chart. vega and vega-lite are
// loaded on the first chart, not when shardtrain is imported: an optimizer-only program never needs them.

export async function vegaLiteSvg(spec: object): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vl.compile(spec as Parameters<typeof vl.compile>[0]).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
