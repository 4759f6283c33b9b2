// Progress over the whole grid: "run k/n", the run's label, and an ETA for the grid. On a terminal, one
// cli-progress bar counting steps over all runs; otherwise one line per finished run. The ETA is the wall
// time so far per unit of work (a run counts as 1, the current one by its completed fraction) times the
// work left, so it includes what steps do not show: starting each run's threads and its evaluations.

import cliProgress from 'cli-progress';

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '?';
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Seconds left, given the elapsed seconds and the runs done (a fraction for the current one). */
export function etaSeconds(elapsedSec: number, runsDone: number, runs: number): number {
  if (runsDone <= 0) return Number.NaN;
  return (elapsedSec / runsDone) * (runs - runsDone);
}

export class GridProgress {
  readonly #runs: number;
  readonly #steps: number;
  readonly #log: (line: string) => void;
  readonly #t0 = performance.now();
  #bar: cliProgress.SingleBar | null = null;
  #run = 0;
  #label = '';

  constructor(runs: number, stepsPerRun: number, showBar: boolean, log: (line: string) => void) {
    this.#runs = runs;
    this.#steps = stepsPerRun;
    this.#log = log;
    if (showBar) {
      this.#bar = new cliProgress.SingleBar(
        { format: 'run {run}/{runs} {bar} {label} | step {step}/{steps} | ETA {gridEta}', hideCursor: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      this.#bar.start(runs * stepsPerRun, 0, this.#payload(0));
    }
  }

  get elapsedSec(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  #payload(step: number) {
    const done = this.#run + step / this.#steps;
    return { run: Math.min(this.#run + 1, this.#runs), runs: this.#runs, label: this.#label, step, steps: this.#steps, gridEta: formatDuration(etaSeconds(this.elapsedSec, done, this.#runs)) };
  }

  /** Run `index` (0-based) starts. */
  start(index: number, label: string): void {
    this.#run = index;
    this.#label = label;
    this.#bar?.update(index * this.#steps, this.#payload(0));
  }

  step(step: number): void {
    this.#bar?.update(this.#run * this.#steps + step, this.#payload(step));
  }

  /** Run `index` finished; `result` is a short description of its numbers. */
  done(index: number, result: string): void {
    this.#run = index + 1;
    if (this.#bar) this.#bar.update(this.#run * this.#steps, this.#payload(0));
    else {
      const eta = this.#run < this.#runs ? ` · ETA ${formatDuration(etaSeconds(this.elapsedSec, this.#run, this.#runs))}` : '';
      this.#log(`run ${index + 1}/${this.#runs} ${this.#label}: ${result} · ${formatDuration(this.elapsedSec)} elapsed${eta}`);
    }
  }

  stop(): void {
    this.#bar?.stop();
    this.#bar = null;
  }
}
