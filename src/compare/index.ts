// `shardtrain compare`: the same model, data order and initial values trained once per (convention, weight
// decay, seed), each run on all cores; then summary.json, summary.md, loss.svg and heatmap.svg in one
// directory. Everything is checked before the first run, and the directory is written only at the end
// (each file to a temporary name, then renamed), so a failed or interrupted compare overwrites nothing.
//
//   options.ts   flags, defaults and their checks      grid.ts     which runs, with which config
//   run-one.ts   one Trainer run and its numbers       summary.ts  mean ± std over seeds, the tables
//   plots.ts     loss.svg and heatmap.svg              progress.ts run k/n and the ETA

import { renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { normalizedWeightDecay } from '../optim/decay-rules.js';
import { loadConfigFile, warmupCutNote, type TrainConfig } from '../train/config.js';
import { startModel } from '../models/model-module.js';
import { RunLock } from '../train/run-lock.js';
import { buildGrid, describeExclusion, type GridRun } from './grid.js';
import { checkOutDir, kCompareKind, resolveCompareOptions, type CompareOptions, type ResolvedCompareOptions } from './options.js';
import { heatmapSvg, lossCurvesSvg } from './plots.js';
import { GridProgress } from './progress.js';
import { normPartition, runOne, type RunResult } from './run-one.js';
import { aggregate, decayLabel, summaryJson, summaryMarkdown, type Cell, type CompareSummary } from './summary.js';

export { resolveCompareOptions, parseNumberList, splitList, compareDefaults } from './options.js';
export type { CompareOptions } from './options.js';
export type { CompareSummary, Cell, Stat } from './summary.js';
export type { RunResult } from './run-one.js';

export interface CompareRunOptions extends CompareOptions {
  /** The command line, quoted in the summary. Default: rebuilt from the options. */
  command?: string;
}

function defaultOut(config: TrainConfig, configPath: string): string {
  const name = config.name ?? basename(configPath).replace(/\.json$/, '');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `compare-${name}-${stamp}`);
}

function rebuildCommand(o: CompareOptions, out: string): string {
  const parts = ['shardtrain compare', `--config ${o.configPath}`, ...(o.sets ?? []).map((s) => `--set ${s}`)];
  if (o.conventions) parts.push(`--conventions ${o.conventions.join(',')}`);
  if (o.weightDecays) parts.push(`--weight-decay ${o.weightDecays.join(',')}`);
  if (o.normalizedWeightDecays) parts.push(`--normalized-weight-decay ${o.normalizedWeightDecays.join(',')}`);
  if (o.seeds !== undefined) parts.push(`--seeds ${o.seeds}`);
  if (o.steps !== undefined) parts.push(`--steps ${o.steps}`);
  parts.push(`--out ${out}`);
  return parts.join(' ');
}

/** What the summary says about the model and data, read once on this thread (no pool). */
async function describeModel(config: TrainConfig): Promise<{ trainExamples: number; evalExamples: number; params: number; names: string[] }> {
  const { model, tensors, counts } = await startModel({ module: config.model.module, options: config.model.options, seed: config.seed, backend: config.backend });
  model.dispose();
  return { trainExamples: counts.train, evalExamples: counts.eval, params: tensors.reduce((a, t) => a + t.size, 0), names: tensors.map((t) => t.name) };
}

/** The exclusion example in one paragraph of numbers: main series against the toggled one, per λ. */
function exclusionParagraph(cells: readonly Cell[], mainRule: string, exampleRule: string): string | null {
  const examples = cells.filter((c) => c.exclusionExample);
  if (examples.length === 0) return null;
  const f = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const rows = examples.flatMap((e) => {
    const main = cells.find((c) => !c.exclusionExample && c.convention === e.convention && c.weightDecay === e.weightDecay);
    if (!main) return [];
    return [
      `| ${decayLabel(e.weightDecay, e.lambdaNorm)} | ${f(main.evalLoss.mean, 4)} | ${f(e.evalLoss.mean, 4)} | ${f(main.trainLoss.mean, 4)} | ${f(e.trainLoss.mean, 4)} | ` +
        `${f(main.excludedNorm.mean, 2)} | ${f(e.excludedNorm.mean, 2)} | ${f(main.decayedNorm.mean, 2)} | ${f(e.decayedNorm.mean, 2)} |`,
    ];
  });
  const name = examples[0].convention;
  return [
    `\`${name}\` with the main runs' exclusion rule (${mainRule}) against the same runs with ${exampleRule} ("${examples[0].series}"), mean over seeds:`,
    '',
    '| λ | held-out (main) | held-out (toggled) | train (main) | train (toggled) | ‖θ excluded‖ (main) | ‖θ excluded‖ (toggled) | ‖θ decayed‖ (main) | ‖θ decayed‖ (toggled) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export async function runCompare(options: CompareRunOptions): Promise<CompareSummary & { out: string }> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const o = resolveCompareOptions(options);
  let base = loadConfigFile(o.configPath, o.sets);
  if (o.steps !== undefined) base = { ...base, steps: o.steps };
  const lock = await RunLock.acquire(o.out ?? defaultOut(base, o.configPath), (line) => process.stderr.write(`${line}\n`));
  try {
    checkOutDir(lock.dir, o.force);
    return await compareGrid(options, o, base, lock, log);
  } finally {
    await lock.release();
  }
}

/** The grid's runs, then its files, written into the locked output directory at the end. */
async function compareGrid(options: CompareRunOptions, o: ResolvedCompareOptions, base: TrainConfig, lock: RunLock, log: (line: string) => void): Promise<CompareSummary & { out: string }> {
  const out = lock.dir;
  const threads = o.threads ?? base.threads ?? availableParallelism();
  const model = await describeModel(base);

  // λ per column: as given, or from λ_norm with b = batch, B = training examples (first seed), T = epochs.
  const epochs = (base.steps * base.batchSize) / model.trainExamples;
  const decays = o.decay.values.map((v) =>
    o.decay.kind === 'plain'
      ? { weightDecay: v, lambdaNorm: null }
      : { weightDecay: normalizedWeightDecay({ lambdaNorm: v, batchSize: base.batchSize, datasetSize: model.trainExamples, epochs }), lambdaNorm: v },
  );
  const grid = buildGrid({ base, conventions: o.conventions, decays, seeds: o.seeds, exclusionExample: o.exclusionExample });
  const rule = base.optimizer.excludeFromWeightDecay;
  const normRule = rule ?? 'bert';
  const split = normPartition(model.names, normRule);
  const evalEvery = Math.max(1, Math.ceil(base.steps / o.evalPoints));

  log(
    `shardtrain compare: ${grid.length} runs (${o.conventions.length} conventions × ${decays.length} weight decays × ${o.seeds} seeds` +
      `${grid.some((r) => r.exclusionExample) ? ` + ${grid.filter((r) => r.exclusionExample).length} exclusion-rule runs` : ''}), ` +
      `${base.steps} steps of batch ${base.batchSize} each on ${threads} threads; ${model.params} params; output ${out}`,
  );
  const cut = warmupCutNote(base);
  if (cut) log(cut);
  const progress = new GridProgress(grid.length, base.steps, options.progress ?? process.stderr.isTTY === true, log);
  const results: RunResult[] = [];
  try {
    for (const run of grid) {
      const label = `${run.series} ${decayLabel(run.weightDecay, run.lambdaNorm)} seed ${run.seed}`;
      progress.start(run.index, label);
      const r = await runOne(run, { threads, evalEvery, normRule, onStep: (s) => progress.step(s) });
      results.push(r);
      progress.done(run.index, r.error ? `stopped: ${r.error}` : `held-out ${r.evalLoss.toFixed(4)}, train ${r.trainLoss.toFixed(4)}, ‖θ‖ ${r.weightNorm.toFixed(2)} (${r.wallSec.toFixed(1)} s)`);
    }
  } finally {
    progress.stop();
  }

  const cells = aggregate(results);
  const o0 = base.optimizer;
  const mainRule = describeExclusion(rule);
  const exampleRun = grid.find((r: GridRun) => r.exclusionExample);
  const summary: CompareSummary = {
    kind: kCompareKind,
    command: options.command ?? rebuildCommand(options, out),
    config: {
      path: o.configPath,
      name: base.name ?? null,
      model: base.model,
      steps: base.steps,
      batchSize: base.batchSize,
      trainExamples: model.trainExamples,
      evalExamples: model.evalExamples,
      params: model.params,
    },
    optimizer: { lr: o0.lr, schedule: o0.schedule, betas: o0.betas, eps: o0.eps, clipGlobalNorm: o0.clipGlobalNorm ?? null, clipValue: o0.clipValue ?? null, amsgrad: o0.amsgrad ?? false },
    seeds: Array.from({ length: o.seeds }, (_, s) => base.seed + s),
    threads,
    weightDecay: {
      kind: o.decay.kind,
      values: o.decay.values,
      ...(o.decay.kind === 'normalized' ? { normalized: { batchSize: base.batchSize, datasetSize: model.trainExamples, epochs, lambdas: decays.map((d) => d.weightDecay) } } : {}),
    },
    exclusion: { rule: mainRule, example: exampleRun ? exclusionParagraph(cells, mainRule, describeExclusion(exampleRun.exclusion)) : null },
    normPartition: { rule: describeExclusion(normRule), excluded: split.excluded, decayed: split.decayed },
    cells,
    runs: results,
    totalWallSec: progress.elapsedSec,
  };

  lock.assertHeld();
  const title = `${base.name ?? basename(o.configPath)}: ${base.steps} steps, mean over ${o.seeds} seed${o.seeds > 1 ? 's' : ''}`;
  writeAtomically(join(out, 'loss.svg'), await lossCurvesSvg(cells, `held-out loss (${title})`));
  writeAtomically(join(out, 'heatmap.svg'), await heatmapSvg(cells, `final held-out loss (${title})`));
  writeAtomically(join(out, 'summary.md'), summaryMarkdown(summary));
  writeAtomically(join(out, 'summary.json'), summaryJson(summary)); // last: its presence marks a finished compare
  log(`done: ${results.length} runs in ${progress.elapsedSec.toFixed(0)} s; wrote ${['summary.md', 'summary.json', 'loss.svg', 'heatmap.svg'].map((f) => join(out, f)).join(', ')}`);
  return { ...summary, out };
}
