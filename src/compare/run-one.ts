// One run of the grid: a Trainer (all cores, one replica per thread) trained for config.steps steps, with
// held-out evaluations along the way, and the numbers the summary reports. Nothing is written to disk.

import { compileDecayTable } from '../optim/decay-rules.js';
import { Trainer } from '../train/trainer.js';
import type { ExclusionSetting, GridRun } from './grid.js';

export interface EvalPoint {
  readonly step: number;
  readonly evalLoss: number;
}

export interface RunResult {
  readonly index: number;
  readonly series: string;
  readonly convention: string;
  readonly lr: number;
  /** The weight-decay column's title (see grid.ts). */
  readonly column: string;
  /** λ the optimizer used: the column's, or the one its timescale gave at this run's lr and convention. */
  readonly weightDecay: number;
  readonly lambdaNorm: number | null;
  /** τ in epochs and iterations, for a timescale column. */
  readonly timescale: GridRun['timescale'];
  readonly seed: number;
  readonly exclusionExample: boolean;
  /** Mean training-batch loss over the last tenth of the steps (every step's batch is new data). */
  readonly trainLoss: number;
  /** Mean loss over every held-out example, after the last step. */
  readonly evalLoss: number;
  /** Held-out loss at step 0, at every evalEvery steps, and at the end. */
  readonly curve: readonly EvalPoint[];
  /** √(Σ θ²) over all tensors, after the last step. */
  readonly weightNorm: number;
  /** The same over the tensors the norm partition decays / excludes (see normPartition). */
  readonly decayedNorm: number;
  readonly excludedNorm: number;
  /** Set when the run stopped early (a non-finite loss or gradient); its numbers are then NaN. */
  readonly error: string | null;
  /** Creation + training + evaluations, seconds (not reproducible: left out of determinism checks). */
  readonly wallSec: number;
}

export interface RunOneOptions {
  readonly threads?: number;
  /** Evaluate every this many steps (and at 0 and the end). */
  readonly evalEvery: number;
  /** Tensors counted as "excluded" in the norms: the same split for every run, whatever its own rule. */
  readonly normRule: ExclusionSetting;
  /** Called after every step (for the progress display). */
  readonly onStep?: (step: number) => void;
  /** Return the final parameters too (tests). */
  readonly keepParams?: boolean;
}

/** The (excluded, decayed) split of tensor names under `rule` (BERT's when the rule is undefined). */
export function normPartition(names: readonly string[], rule: ExclusionSetting): { excluded: string[]; decayed: string[] } {
  const table = compileDecayTable(names, 1, rule ?? 'bert');
  return { excluded: table.filter((e) => e.excluded).map((e) => e.name), decayed: table.filter((e) => !e.excluded).map((e) => e.name) };
}

function norm(params: Record<string, Float32Array>, names: readonly string[]): number {
  let s = 0;
  for (const name of names) for (const x of params[name]) s += x * x;
  return Math.sqrt(s);
}

export async function runOne(run: GridRun, o: RunOneOptions): Promise<RunResult & { params?: Record<string, Float32Array> }> {
  const t0 = performance.now();
  const steps = run.config.steps;
  const tail = Math.max(1, Math.floor(steps / 10));
  const trainer = await Trainer.create({ config: run.config, threads: o.threads, where: `compare run ${run.index + 1} (${run.series}, lr ${run.lr}, ${run.column}, seed ${run.seed})` });
  const curve: EvalPoint[] = [];
  let tailSum = 0;
  let error: string | null = null;
  try {
    curve.push({ step: 0, evalLoss: await trainer.evaluate() });
    try {
      while (trainer.globalStep < steps) {
        const r = await trainer.step();
        // A non-finite loss has already thrown (onNonFinite 'throw'), or the step was skipped ('skip'): the
        // trainer counts skips and stops after maxConsecutiveSkips, and a skipped step has no loss to count.
        if (r.skipped) continue;
        if (r.step > steps - tail) tailSum += r.loss;
        if (r.step % o.evalEvery === 0 || r.step === steps) curve.push({ step: r.step, evalLoss: await trainer.evaluate() });
        o.onStep?.(r.step);
      }
    } catch (err) {
      // A diverged run is a result too (e.g. a λ far too large for its convention): report it, go on.
      error = (err as Error).message.split('\n')[0];
    }
    const params = trainer.snapshot();
    const names = trainer.tensors.map((t) => t.name);
    const split = normPartition(names, o.normRule);
    const last = curve[curve.length - 1];
    return {
      index: run.index,
      series: run.series,
      convention: run.convention,
      lr: run.lr,
      column: run.column,
      weightDecay: trainer.optimizer.options.weightDecay,
      lambdaNorm: run.lambdaNorm,
      timescale: run.timescale,
      seed: run.seed,
      exclusionExample: run.exclusionExample,
      trainLoss: error ? Number.NaN : tailSum / tail,
      evalLoss: error || last.step !== steps ? Number.NaN : last.evalLoss,
      curve,
      weightNorm: norm(params, names),
      decayedNorm: norm(params, split.decayed),
      excludedNorm: norm(params, split.excluded),
      error,
      wallSec: (performance.now() - t0) / 1000,
      ...(o.keepParams ? { params } : {}),
    };
  } finally {
    await trainer.close();
  }
}
