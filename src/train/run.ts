// The `shardtrain train` job: a Trainer plus everything a run leaves behind in its directory:
//   config.json          the effective config
//   metrics.jsonl        one JSON object per line: {step, loss, lr, gradNorm, samplesPerSec, elapsedSec}
//                        (and tokensPerSec for sequence models)
//                        every logEvery steps, {step, evalLoss} at each evaluation, and
//                        {step, skipped: true, skippedTotal, batch, nonFinite: [...]} for each skipped step
//   checkpoint-<step>.safetensors  every checkpointEvery steps and at the end (atomic; the newest keepLast kept)
//   loss.svg             the loss curve (vega-lite), at the end
//   summary.json         final step, eval loss, samples
// Ctrl-C / SIGTERM: the current step finishes, a checkpoint is written, and the job returns `interrupted`
// (the CLI exits 130 / 143).

import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { removeStaleTemps, resolveCheckpoint, saveInRunDir } from '../checkpoint/checkpoint-store.js';
import { checkpointConfig, loadConfigFile, ConfigError, warmupCutNote, type TrainConfig } from './config.js';
import { lossCurveSvg, type CurvePoint } from './loss-curve.js';
import { describeNonFinite, type NonFiniteReport } from './non-finite.js';
import { RunLock } from './run-lock.js';
import { runThreads, Trainer } from './trainer.js';
import { engineOf } from './engines.js';
import { checkMemoryPlan, describeMemoryPlan } from './memory-plan.js';
import { planShardtrainRun } from './shardtrain-engine.js';
import type { Checkpoint } from '../checkpoint/open.js';
import { timescaleNote } from '../optim/weight-decay.js';

/** What `shardtrain train` trains without --config: the character-level LM of first names. */
export const kDefaultConfig = relative(process.cwd(), fileURLToPath(new URL('../../../config/char-lm.json', import.meta.url)));

export interface RunOptions {
  /** Path of a config file (default: the built-in config/char-lm.json; with `resume`: the checkpoint's config). */
  configPath?: string;
  /** `KEY=VALUE` overrides of the config (`optimizer.lr=3e-4`), validated with it; config.json holds the result. */
  sets?: readonly string[];
  threads?: number;
  /** Train until this step (overrides config.steps, and so the schedule's default totalSteps). */
  steps?: number;
  /** Run directory. Default: the resumed run's directory, else runs/<config name>-<time>. */
  out?: string;
  /** A run directory (its newest checkpoint that verifies) or a checkpoint file to continue from. */
  resume?: string;
  /** Draw a progress bar (default: when stderr is a terminal). */
  progress?: boolean;
  /** Where human-readable lines go. Default process.stdout. */
  log?: (line: string) => void;
  /** Where warnings go (a damaged checkpoint skipped on resume). Default process.stderr. */
  warn?: (line: string) => void;
  /** Set to stop after the current step (the CLI wires SIGINT and SIGTERM to it). */
  stopSignal?: { stopped: boolean };
}

export interface RunSummary {
  readonly out: string;
  readonly step: number;
  readonly trainLoss: number;
  readonly evalLoss: number;
  readonly samples: string[];
  readonly interrupted: boolean;
  readonly samplesPerSec: number;
}

function defaultOut(config: TrainConfig, configPath: string | undefined): string {
  const name = config.name ?? (configPath ? basename(configPath).replace(/\.json$/, '') : 'run');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `${name}-${stamp}`);
}

/** Keep the metrics of steps ≤ `step` (a resumed run rewrites what came after its checkpoint). */
function readMetrics(path: string, step: number): object[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as { step: number })
    .filter((m) => m.step <= step);
}

/** `samples: a, b, c` for short one-line samples (names); otherwise one JSON-quoted sample per line. */
export function formatSamples(samples: readonly string[]): string {
  if (samples.every((s) => s.length <= 40 && !s.includes('\n'))) return `samples: ${samples.join(', ')}`;
  return samples.map((s, i) => `sample ${i + 1}: ${JSON.stringify(s)}`).join('\n');
}

/** Characters of the sample printed at each evaluation during a run (sequence models; others ignore it). */
const kEvalSampleTokens = 100;

/** A skipped step in metrics.jsonl: per bad replica its loss (as text: JSON has no NaN), tensor and examples. */
function skipRecord(report: NonFiniteReport): object[] {
  return report.replicas.map((r) => ({ replica: r.replica, loss: String(r.loss), tensor: r.tensor, examples: r.culprits, batchExamples: r.examples }));
}

/** The run's config, from --config (or the default) or the checkpoint to resume, with --set and --steps applied. */
function resolveRunConfig(options: RunOptions, log: (line: string) => void, warn: (line: string) => void): { config: TrainConfig; configPath: string | undefined; checkpoint: Checkpoint | undefined } {
  const checkpoint = options.resume === undefined ? undefined : resolveCheckpoint(options.resume, warn, '--resume ');
  let configPath = options.configPath;
  if (configPath === undefined && checkpoint === undefined) {
    configPath = kDefaultConfig;
    log(`shardtrain: no --config given: training the built-in default, ${configPath}`);
  }
  let config = configPath !== undefined ? loadConfigFile(configPath, options.sets) : checkpointConfig(checkpoint!, options.sets);
  if (options.steps !== undefined) {
    if (!Number.isInteger(options.steps) || options.steps < 1) throw new ConfigError(`--steps must be a positive integer, got ${options.steps}`);
    config = { ...config, steps: options.steps };
  }
  return { config, configPath, checkpoint };
}

export async function runTraining(options: RunOptions): Promise<RunSummary> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  // The run directory is locked before anything in it is read, so a second process on it is refused at once
  // (a new directory, named from the config, is locked as soon as its name is known).
  const resumeDir = options.resume !== undefined && existsSync(options.resume) && statSync(options.resume).isDirectory() ? options.resume : undefined;
  const known = options.out ?? resumeDir;
  let lock = known === undefined ? null : await RunLock.acquire(known, warn);
  try {
    const { config, configPath, checkpoint } = resolveRunConfig(options, log, warn);
    lock ??= await RunLock.acquire(defaultOut(config, configPath), warn);
    const cut = warmupCutNote(config);
    if (cut) log(cut);
    // Everything is checked (config, model module, checkpoint names and shapes) before the run directory is written.
    const trainer = await Trainer.create({ config, threads: options.threads, resume: checkpoint, where: configPath ? `config ${configPath}` : 'config' });
    return await trainInRunDir(trainer, lock, options, log);
  } finally {
    await lock?.release();
  }
}

/**
 * `shardtrain train --dry-run`: the run's memory plan in one line, computed as the run would (data loaded,
 * nothing large allocated, no run directory touched); a plan that cannot run here is the run's own error.
 */
export async function planTraining(options: RunOptions): Promise<string> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { config, configPath } = resolveRunConfig(options, log, warn);
  const where = configPath ? `config ${configPath}` : 'config';
  const { threads, replicas } = runThreads(config, options.threads, where);
  if (engineOf(config) !== 'shardtrain') {
    return `memory plan: engine tfjs (model module ${config.model.module}): no plan ahead of the run, a tfjs replica's heap grows as its kernels ask; ${threads} threads, ${replicas} replicas`;
  }
  const plan = await planShardtrainRun(config, replicas, threads, where);
  checkMemoryPlan(plan.memory, where);
  return describeMemoryPlan(plan.memory);
}

/** The training loop of the `train` job, writing into the locked run directory; closes the trainer. */
async function trainInRunDir(trainer: Trainer, lock: RunLock, options: RunOptions, log: (line: string) => void): Promise<RunSummary> {
  const out = lock.dir;
  const stop = options.stopSignal ?? { stopped: false };
  let bar: cliProgress.SingleBar | null = null;
  try {
    lock.assertHeld();
    removeStaleTemps(out);
    const metricsPath = join(out, 'metrics.jsonl');
    const startStep = trainer.globalStep;
    const kept = readMetrics(metricsPath, startStep);
    writeFileSync(metricsPath, kept.map((m) => `${JSON.stringify(m)}\n`).join(''));
    writeFileSync(join(out, 'config.json'), `${JSON.stringify(trainer.config, null, 2)}\n`);
    // Every write below first checks that the directory is still ours (see RunLock).
    const metric = (record: object): void => {
      lock.assertHeld();
      appendFileSync(metricsPath, `${JSON.stringify(record)}\n`);
    };
    const save = (): Promise<string> => {
      lock.assertHeld();
      return saveInRunDir(out, trainer, trainer.config.keepLast);
    };
    const c = trainer.config;
    const total = c.steps;
    log(
      `shardtrain: ${trainer.tensors.length} tensors, ${trainer.optimizer.layout.totalSize} params, ${trainer.counts.train} training / ${trainer.counts.eval} held-out examples; ` +
        `${trainer.threads} threads, ${trainer.replicas} replicas × ${c.batchSize / trainer.replicas} examples${c.accumulateSteps > 1 ? ` (${c.accumulateSteps} micro-batches)` : ''}, ${trainer.engine.description}; run dir ${out}` +
        (startStep > 0 ? `; resumed at step ${startStep}` : ''),
    );
    const timescale = trainer.optimizer.options.weightDecayTimescale;
    if (timescale) log(timescaleNote(timescale));
    if (trainer.engine.planLine !== undefined) log(trainer.engine.planLine);

    const showBar = options.progress ?? process.stderr.isTTY === true;
    // Sequence models (token windows) report tokens/s: samples/s × the window.
    const tpe = trainer.tokensPerExample;
    const rate = (sps: number): string => (tpe === null ? `${sps.toFixed(0)} samples/s` : `${(sps * tpe).toFixed(0)} tokens/s`);
    if (showBar) {
      bar = new cliProgress.SingleBar(
        { format: 'step {value}/{total} {bar} loss {loss} | lr {lr} | {rate} | ETA {eta_formatted}', hideCursor: true, etaBuffer: 50, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, startStep, { loss: '-', lr: '-', rate: '-' });
    }
    const every = Math.max(1, Math.floor(total / 20));
    const t0 = performance.now();
    let windowStart = t0;
    let windowSteps = 0;
    let sps = 0;
    let measured = false;
    let last = { loss: Number.NaN };
    const evaluate = async (): Promise<number> => {
      const evalLoss = await trainer.evaluate();
      metric({ step: trainer.globalStep, evalLoss });
      return evalLoss;
    };
    while (trainer.globalStep < total && !stop.stopped) {
      const r = await trainer.step();
      if (r.skipped) {
        // The step is not counted: the same step number is tried again on the next batch.
        const detail = describeNonFinite(r.nonFinite!);
        metric({ step: r.step + 1, skipped: true, skippedTotal: r.skippedTotal, batch: r.batch, nonFinite: skipRecord(r.nonFinite!) });
        if (bar) process.stderr.write(`\r\x1b[K`); // clear the bar's line; it redraws on the next update
        log(`skipped ${detail}`);
        continue;
      }
      last = r;
      windowSteps++;
      const now = performance.now();
      // The rate over the last second; until a first second has passed, over the steps so far (not 0).
      const windowRate = (windowSteps * c.batchSize * 1000) / Math.max(now - windowStart, 1e-3);
      if (now - windowStart > 1000 || r.step === total) {
        sps = windowRate;
        windowStart = now;
        windowSteps = 0;
        measured = true;
      } else if (!measured) sps = windowRate;
      if (r.step % c.logEvery === 0 || r.step === total) {
        metric({ step: r.step, loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, samplesPerSec: Math.round(sps), ...(tpe === null ? {} : { tokensPerSec: Math.round(sps * tpe) }), elapsedSec: (now - t0) / 1000 });
      }
      bar?.update(r.step, { loss: r.loss.toFixed(4), lr: r.lr.toExponential(2), rate: rate(sps) });
      if (!bar && (r.step % every === 0 || r.step === total)) log(`step ${r.step}/${total}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  ${rate(sps)}`);
      if (c.checkpointEvery !== undefined && r.step % c.checkpointEvery === 0 && r.step !== total) await save();
      if (c.evalEvery !== undefined && r.step % c.evalEvery === 0 && r.step !== total) {
        const evalLoss = await evaluate();
        if (bar) process.stderr.write(`\r\x1b[K`);
        log(`step ${r.step}: held-out loss ${evalLoss.toFixed(4)}`);
        const samples = await trainer.sample(1, c.seed, { tokens: kEvalSampleTokens });
        if (samples.length > 0) log(formatSamples(samples));
      }
    }
    bar?.stop();
    bar = null;
    const checkpoint = await save();
    const interrupted = trainer.globalStep < total;
    const elapsed = (performance.now() - t0) / 1000;
    const done = trainer.globalStep - startStep;
    const samplesPerSec = elapsed > 0 ? (done * c.batchSize) / elapsed : 0;
    if (interrupted) {
      log(`interrupted: checkpoint at step ${trainer.globalStep} written to ${checkpoint}; continue with --resume ${out}`);
      return { out, step: trainer.globalStep, trainLoss: last.loss, evalLoss: Number.NaN, samples: [], interrupted, samplesPerSec };
    }
    const evalLoss = await evaluate();
    const samples = await trainer.sample();
    const metrics = readMetrics(metricsPath, Number.POSITIVE_INFINITY) as Array<{ step: number; loss?: number; evalLoss?: number }>;
    const points: CurvePoint[] = metrics.flatMap((m) => [
      ...(m.loss !== undefined ? [{ step: m.step, loss: m.loss, series: 'train (batch)' }] : []),
      ...(m.evalLoss !== undefined ? [{ step: m.step, loss: m.evalLoss, series: 'held-out' }] : []),
    ]);
    lock.assertHeld();
    writeFileSync(join(out, 'loss.svg'), await lossCurveSvg(points, `${c.name ?? 'shardtrain'}: loss`));
    const summary = { out, step: trainer.globalStep, trainLoss: last.loss, evalLoss, samples, interrupted, samplesPerSec };
    writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    log(`done: ${done} steps in ${elapsed.toFixed(1)} s (${rate(samplesPerSec)}); train loss ${last.loss.toFixed(4)}, held-out loss ${evalLoss.toFixed(4)}`);
    if (samples.length > 0) log(formatSamples(samples));
    log(`wrote ${checkpoint}, ${join(out, 'metrics.jsonl')}, ${join(out, 'loss.svg')}`);
    return summary;
  } finally {
    bar?.stop();
    await trainer.close();
  }
}
