// Options of `shardtrain compare`, the piscina way: an interface (all optional but the config) → frozen
// defaults → one merge by spread → a flat run of checks, each a one-line message that names the flag and
// the value. Everything here is checked before a thread starts or a file is touched.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { conventionNames } from '../optim/conventions.js';
import { ConfigError } from '../train/config.js';
import { parseSeries, type SeriesName } from './grid.js';

export interface CompareOptions {
  /** Path of a training config (config/*.json). Its optimizer section is the baseline every run shares. */
  configPath: string;
  /** `KEY=VALUE` overrides of the config (`--set`), applied before it is validated. */
  sets?: readonly string[];
  /**
   * Conventions to compare. Default: all of them (conventionNames). "<convention>+cautious" is that
   * convention with cautiousWeightDecay on, as a series of its own ("pytorch,pytorch+cautious").
   */
  conventions?: readonly string[];
  /** λ values (the grid's columns). Default [0, 1e-4, 1e-2, 1e-1]. Not with normalizedWeightDecay. */
  weightDecays?: readonly number[];
  /** λ_norm values of the paper: each becomes λ = λ_norm·√(b/(B·T)). Replaces weightDecays. */
  normalizedWeightDecays?: readonly number[];
  /**
   * τ values in epochs (the grid's columns instead of λ): each run gets weightDecayTimescale { iterations:
   * τ·N/B }, so its λ = 1/(r_peak·τ_iter) follows its lr and convention. Replaces weightDecays.
   */
  timescales?: readonly number[];
  /** Base learning rates (the grid's rows, per convention). Default: the config's lr alone. */
  lrs?: readonly number[];
  /** Seeds config.seed, config.seed + 1, … Default 3. */
  seeds?: number;
  /** Steps per run (overrides config.steps). */
  steps?: number;
  /** Held-out evaluations per run, evenly spaced, plus one at step 0. Default 10. */
  evalPoints?: number;
  /** Output directory. Default runs/compare-<config name>-<time>. */
  out?: string;
  /** Overwrite a previous compare in `out`. */
  force?: boolean;
  /** Also run the first convention with the exclusion rule toggled (BERT's list on ↔ off). Default true. */
  exclusionExample?: boolean;
  /** Pool threads per run. Default: all cores. */
  threads?: number;
  /** Progress bar (default: when stderr is a terminal); otherwise one line per run. */
  progress?: boolean;
  /** Human-readable lines. Default process.stdout. */
  log?: (line: string) => void;
}

export const compareDefaults = Object.freeze({
  conventions: Object.freeze([...conventionNames]) as readonly string[],
  weightDecays: Object.freeze([0, 1e-4, 1e-2, 1e-1]) as readonly number[],
  seeds: 3,
  evalPoints: 10,
  force: false,
  exclusionExample: true,
});

export interface ResolvedCompareOptions {
  readonly configPath: string;
  readonly sets: readonly string[];
  readonly conventions: readonly SeriesName[];
  /** Plain λ values, λ_norm values, or τ in epochs (the last two turned into λ once the data set size is known). */
  readonly decay: { readonly kind: DecayAxis; readonly values: readonly number[] };
  /** The lr axis, or undefined for the config's lr alone. */
  readonly lrs: readonly number[] | undefined;
  readonly seeds: number;
  readonly steps: number | undefined;
  readonly evalPoints: number;
  readonly out: string | undefined;
  readonly force: boolean;
  readonly exclusionExample: boolean;
  readonly threads: number | undefined;
}

export type DecayAxis = 'plain' | 'normalized' | 'timescale';

/** The flag of each decay axis, for messages. */
export const kDecayFlags: Readonly<Record<DecayAxis, string>> = Object.freeze({ plain: '--weight-decay', normalized: '--normalized-weight-decay', timescale: '--timescale' });

/** The file that marks a directory as holding a compare. */
export const kSummaryJson = 'summary.json';
/** lr-heatmap.svg only with more than one lr. */
export const kOutputFiles = Object.freeze(['summary.json', 'summary.md', 'loss.svg', 'heatmap.svg', 'lr-heatmap.svg']);
export const kCompareKind = 'shardtrain compare';

/** "a,b,c" → ["a", "b", "c"] (spaces trimmed). An empty string is an empty list. */
export function splitList(text: string): string[] {
  return text.trim() === '' ? [] : text.split(',').map((s) => s.trim());
}

/** "0,1e-4" → [0, 0.0001], naming the flag and the bad entry. */
export function parseNumberList(flag: string, text: string): number[] {
  return splitList(text).map((s) => {
    const x = s === '' ? Number.NaN : Number(s);
    if (!Number.isFinite(x)) throw new ConfigError(`${flag}: ${JSON.stringify(s)} is not a number`);
    return x;
  });
}

function checkPositiveInt(flag: string, x: number | undefined): void {
  if (x !== undefined && (!Number.isInteger(x) || x < 1)) throw new ConfigError(`${flag} must be a positive integer, got ${x}`);
}

/** A list flag's values: at least one, each passing `ok` (else "<flag>: <what> must be <expected>, got x"), none twice. */
function checkList(flag: string, values: readonly number[], what: string, ok: (x: number) => boolean, expected: string): void {
  if (values.length === 0) throw new ConfigError(`${flag} must list at least one value, got an empty list`);
  for (const x of values) {
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) throw new ConfigError(`${flag}: ${what} must be ${expected}, got ${x}`);
  }
  const seen = new Set<number>();
  for (const x of values) {
    if (seen.has(x)) throw new ConfigError(`${flag}: ${x} is listed twice`);
    seen.add(x);
  }
}

/** Check everything that can be checked without loading the model. */
export function resolveCompareOptions(options: CompareOptions): ResolvedCompareOptions {
  // An option given as undefined (a flag not passed) keeps its default.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as CompareOptions;
  const o = { ...compareDefaults, ...given };
  if (typeof o.configPath !== 'string' || o.configPath === '') throw new ConfigError('compare needs --config FILE');
  if (o.conventions.length === 0) throw new ConfigError(`--conventions must list at least one convention, got an empty list (known: ${conventionNames.join(', ')})`);
  const seen = new Set<string>();
  for (const name of o.conventions) {
    try {
      parseSeries(name);
    } catch (err) {
      throw new ConfigError(`--conventions: ${(err as Error).message}`);
    }
    if (seen.has(name)) throw new ConfigError(`--conventions: ${name} is listed twice`);
    seen.add(name);
  }
  const axes = (
    [
      ['plain', options.weightDecays],
      ['normalized', options.normalizedWeightDecays],
      ['timescale', options.timescales],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (axes.length > 1) {
    throw new ConfigError(`${axes.map(([k]) => kDecayFlags[k]).join(' and ')} cannot be combined: give one list of λ, of λ_norm or of τ`);
  }
  const decay = { kind: axes[0]?.[0] ?? 'plain', values: [...(axes[0]?.[1] ?? o.weightDecays)] } as const;
  if (decay.kind === 'timescale') checkList(kDecayFlags.timescale, decay.values, 'τ', (x) => x > 0, 'a finite number of epochs > 0');
  else checkList(kDecayFlags[decay.kind], decay.values, 'weight decay', (x) => x >= 0, 'a finite number >= 0');
  if (o.lrs !== undefined) checkList('--lr', o.lrs, 'learning rate', (x) => x > 0, 'a finite number > 0');
  checkPositiveInt('--seeds', o.seeds);
  checkPositiveInt('--steps', o.steps);
  checkPositiveInt('--eval-points', o.evalPoints);
  checkPositiveInt('--threads', o.threads);
  if (o.out !== undefined) checkOutDir(o.out, o.force);
  return {
    configPath: o.configPath,
    sets: o.sets ?? [],
    conventions: o.conventions as SeriesName[],
    decay,
    lrs: o.lrs === undefined ? undefined : [...o.lrs],
    seeds: o.seeds,
    steps: o.steps,
    evalPoints: o.evalPoints,
    out: o.out,
    force: o.force,
    exclusionExample: o.exclusionExample,
    threads: o.threads,
  };
}

/** An output directory may be new, or hold anything but a previous compare (unless `force`). */
export function checkOutDir(out: string, force: boolean): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new ConfigError(`--out ${out} is a file, not a directory`);
  if (force) return;
  const summary = join(out, kSummaryJson);
  if (existsSync(summary)) {
    let kind: unknown;
    try {
      kind = (JSON.parse(readFileSync(summary, 'utf8')) as { kind?: unknown }).kind;
    } catch {
      kind = undefined;
    }
    const what = kind === kCompareKind ? 'a previous compare' : `a ${kSummaryJson}`;
    throw new ConfigError(`--out ${out} already holds ${what} (${summary}); pass --force to overwrite it, or choose another --out`);
  }
  for (const file of kOutputFiles) {
    if (existsSync(join(out, file))) throw new ConfigError(`--out ${out} already holds ${join(out, file)}; pass --force to overwrite it, or choose another --out`);
  }
}
