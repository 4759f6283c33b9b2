// `shardtrain compare`: the same model, data order and initial values trained once per (convention, lr, weight
// decay, seed), each run on all cores; then summary.json, summary.md, loss.svg, heatmap.svg and, with several
// lrs, lr-heatmap.svg in one directory. Everything is checked before the first run (every run's optimizer
// options included), and the directory is written only at the end (each file to a temporary name, then
// renamed), so a failed or interrupted compare overwrites nothing.
//
//   options.ts   flags, defaults and their checks      grid.ts     which runs, with which config
//   run-one.ts   one Trainer run and its numbers       summary.ts  mean ± std over seeds, the tables
//   lr-grid.ts   the lr × λ matrix per convention      plots.ts    loss.svg, heatmap.svg, lr-heatmap.svg
//   progress.ts  run k/n and the ETA

import { renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { normalizedWeightDecay } from '../optim/decay-rules.js';
import { resolveAdamwOptions } from '../optim/options.js';
import { iterationsPerEpoch } from '../optim/weight-decay.js';
import { ConfigError, loadConfigFile, optimizerOptionsFromConfig, warmupCutNote, type TrainConfig } from '../train/config.js';
import { startModel } from '../models/model-module.js';
import { RunLock } from '../train/run-lock.js';
import { buildGrid, describeExclusion, normalizedColumn, plainColumn, timescaleColumn, type DecayColumn, type GridRun } from './grid.js';
import { lrGrids } from './lr-grid.js';
import { checkOutDir, kCompareKind, resolveCompareOptions, type CompareOptions, type ResolvedCompareOptions } from './options.js';
import { heatmapSvg, lossCurvesSvg, lrHeatmapSvg } from './plots.js';
import { GridProgress } from './progress.js';
import { normPartition, runOne, type RunResult } from './run-one.js';
import { aggregate, summaryJson, summaryMarkdown, type Cell, type CompareSummary } from './summary.js';

export { resolveCompareOptions, parseNumberList, splitList, compareDefaults } from './options.js';
export type { CompareOptions } from './options.js';
export type { CompareSummary, Cell, Stat } from './summary.js';
export type { LrGrid } from './lr-grid.js';
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
  if (o.timescales) parts.push(`--timescale ${o.timescales.join(',')}`);
  if (o.lrs) parts.push(`--lr ${o.lrs.join(',')}`);
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

/** The exclusion example in one paragraph of numbers: main series against the toggled one, per (lr,) λ. */
function exclusionParagraph(cells: readonly Cell[], mainRule: string, exampleRule: string): string | null {
  const examples = cells.filter((c) => c.exclusionExample);
  if (examples.length === 0) return null;
  const f = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const lrs = new Set(cells.map((c) => c.lr)).size;
  const rows = examples.flatMap((e) => {
    const main = cells.find((c) => !c.exclusionExample && c.convention === e.convention && c.lr === e.lr && c.column === e.column);
    if (!main) return [];
    return [
      `| ${lrs > 1 ? `lr ${e.lr}, ` : ''}${e.column} | ${f(main.evalLoss.mean, 4)} | ${f(e.evalLoss.mean, 4)} | ${f(main.trainLoss.mean, 4)} | ${f(e.trainLoss.mean, 4)} | ` +
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

/**
 * Every run's optimizer options, checked before the first run starts (adamc's peak lr, cautious decay with
 * l2, a timescale with l2, …): a bad combination is one line naming the run, and nothing has been trained.
 */
function checkRuns(grid: readonly GridRun[], model: { trainExamples: number; names: string[] }): void {
  for (const run of grid) {
    try {
      resolveAdamwOptions(optimizerOptionsFromConfig(run.config, { train: model.trainExamples }), model.names);
    } catch (err) {
      throw new ConfigError(`compare run ${run.index + 1} (${run.series}, lr ${run.lr}, ${run.column}): ${(err as Error).message}`);
    }
  }
}

/** The grid's runs, then its files, written into the locked output directory at the end. */
async function compareGrid(options: CompareRunOptions, o: ResolvedCompareOptions, base: TrainConfig, lock: RunLock, log: (line: string) => void): Promise<CompareSummary & { out: string }> {
  const out = lock.dir;
  const threads = o.threads ?? base.threads ?? availableParallelism();
  const model = await describeModel(base);

  // The columns: λ as given; from λ_norm with b = batch, B = training examples (first seed), T = epochs; or τ
  // in epochs of M = N/B iterations (a run's λ then follows from its lr and convention).
  const epochs = (base.steps * base.batchSize) / model.trainExamples;
  const perEpoch = iterationsPerEpoch(model.trainExamples, base.batchSize);
  const decays: DecayColumn[] = o.decay.values.map((v) =>
    o.decay.kind === 'plain'
      ? plainColumn(v)
      : o.decay.kind === 'normalized'
        ? normalizedColumn(v, normalizedWeightDecay({ lambdaNorm: v, batchSize: base.batchSize, datasetSize: model.trainExamples, epochs }))
        : timescaleColumn(v, perEpoch),
  );
  const lrs = o.lrs ?? [base.optimizer.lr];
  const grid = buildGrid({ base, conventions: o.conventions, lrs, decays, seeds: o.seeds, exclusionExample: o.exclusionExample });
  checkRuns(grid, model);
  const rule = base.optimizer.excludeFromWeightDecay;
  const normRule = rule ?? 'bert';
  const split = normPartition(model.names, normRule);
  const evalEvery = Math.max(1, Math.ceil(base.steps / o.evalPoints));

  log(
    `shardtrain compare: ${grid.length} runs (${o.conventions.length} conventions × ${lrs.length > 1 ? `${lrs.length} lrs × ` : ''}${decays.length} ${o.decay.kind === 'timescale' ? 'timescales' : 'weight decays'} × ${o.seeds} seeds` +
      `${grid.some((r) => r.exclusionExample) ? ` + ${grid.filter((r) => r.exclusionExample).length} exclusion-rule runs` : ''}), ` +
      `${base.steps} steps of batch ${base.batchSize} each on ${threads} threads; ${model.params} params; output ${out}`,
  );
  if (o.decay.kind === 'timescale') {
    log(`weight decay from its timescale: τ_iter = τ × ${perEpoch.toPrecision(4)} iterations per epoch (${model.trainExamples} examples / batch ${base.batchSize}); each run's λ = 1/(r_peak·τ_iter), listed in summary.md`);
  }
  const cut = warmupCutNote(base);
  if (cut) log(cut);
  const progress = new GridProgress(grid.length, base.steps, options.progress ?? process.stderr.isTTY === true, log);
  const results: RunResult[] = [];
  try {
    for (const run of grid) {
      const label = `${run.series}${lrs.length > 1 ? ` lr ${run.lr}` : ''} ${run.column} seed ${run.seed}`;
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
    // The settings every run shares (the lr only when it is not an axis; the new knobs only when set).
    optimizer: {
      ...(o.lrs === undefined ? { lr: o0.lr } : {}),
      schedule: o0.schedule,
      betas: o0.betas,
      eps: o0.eps,
      clipGlobalNorm: o0.clipGlobalNorm ?? null,
      clipValue: o0.clipValue ?? null,
      amsgrad: o0.amsgrad ?? false,
      ...(o0.cautiousWeightDecay ? { cautiousWeightDecay: true } : {}),
      ...(o0.weightDecaySchedule !== undefined ? { weightDecaySchedule: o0.weightDecaySchedule } : {}),
    },
    seeds: Array.from({ length: o.seeds }, (_, s) => base.seed + s),
    threads,
    lrs,
    weightDecay: {
      kind: o.decay.kind,
      values: o.decay.values,
      ...(o.decay.kind === 'normalized' ? { normalized: { batchSize: base.batchSize, datasetSize: model.trainExamples, epochs, lambdas: decays.map((d) => d.weightDecay!) } } : {}),
      ...(o.decay.kind === 'timescale'
        ? { timescale: { batchSize: base.batchSize, datasetSize: model.trainExamples, iterationsPerEpoch: perEpoch, iterations: decays.map((d) => d.timescale!.iterations) } }
        : {}),
    },
    exclusion: { rule: mainRule, example: exampleRun ? exclusionParagraph(cells, mainRule, describeExclusion(exampleRun.exclusion)) : null },
    normPartition: { rule: describeExclusion(normRule), excluded: split.excluded, decayed: split.decayed },
    cells,
    grid: lrGrids(cells),
    runs: results,
    totalWallSec: progress.elapsedSec,
  };

  lock.assertHeld();
  const title = `${base.name ?? basename(o.configPath)}: ${base.steps} steps, mean over ${o.seeds} seed${o.seeds > 1 ? 's' : ''}`;
  writeAtomically(join(out, 'loss.svg'), await lossCurvesSvg(cells, `held-out loss (${title})`));
  writeAtomically(join(out, 'heatmap.svg'), await heatmapSvg(cells, `final held-out loss (${title})`));
  if (lrs.length > 1) writeAtomically(join(out, 'lr-heatmap.svg'), await lrHeatmapSvg(summary.grid, `final held-out loss over lr × weight decay (${title})`));
  writeAtomically(join(out, 'summary.md'), summaryMarkdown(summary));
  writeAtomically(join(out, 'summary.json'), summaryJson(summary)); // last: its presence marks a finished compare
  const files = ['summary.md', 'summary.json', 'loss.svg', 'heatmap.svg', ...(lrs.length > 1 ? ['lr-heatmap.svg'] : [])];
  log(`done: ${results.length} runs in ${progress.elapsedSec.toFixed(0)} s; wrote ${files.map((f) => join(out, f)).join(', ')}`);
  return { ...summary, out };
}
