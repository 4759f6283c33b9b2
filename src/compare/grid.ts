// The grid of `shardtrain compare`: one run per (convention, lr, weight decay, seed), all from the same config,
// plus the exclusion-rule example (the first convention with the config's exclusion rule toggled, at every
// λ > 0). Runs of the same seed share the initial values, the data split and the data order (all seeded by
// config.seed), so within a seed the only difference between two runs is the optimizer.
//
// A weight-decay column is a λ, a λ_norm (already turned into its λ), or a timescale τ: then every run of the
// column gets weightDecayTimescale { iterations: τ·N/B } and the optimizer derives its λ from its own lr and
// convention (src/optim/weight-decay.ts), which is what lets a τ transfer across lr where a raw λ does not.
//
// A series is a convention, or a convention with cautious decay ("pytorch+cautious": the same knobs with
// cautiousWeightDecay on), so that a grid can hold both side by side, paired by seed.

import { conventionNames, isConventionName, type ConventionName } from '../optim/conventions.js';
import { bertNoDecay, hfNoDecay } from '../optim/decay-rules.js';
import { parseConfig, type TrainConfig } from '../train/config.js';

export type ExclusionSetting = TrainConfig['optimizer']['excludeFromWeightDecay'];

/** A series name: a convention, or a convention followed by a variant ("+cautious"). */
export type SeriesName = ConventionName | `${ConventionName}${SeriesVariant}`;
export type SeriesVariant = '+cautious';
/** The variants a series name may end with, and the knobs each sets on top of the convention. */
export const kSeriesVariants: Readonly<Record<SeriesVariant, { readonly cautiousWeightDecay: true }>> = Object.freeze({ '+cautious': Object.freeze({ cautiousWeightDecay: true }) });

export interface SeriesSpec {
  readonly series: SeriesName;
  readonly convention: ConventionName;
  /** cautiousWeightDecay on for this series (on top of whatever the config says). */
  readonly cautious: boolean;
}

/** "pytorch" → pytorch; "pytorch+cautious" → pytorch with cautious decay; anything else is one line naming it. */
export function parseSeries(name: string): SeriesSpec {
  const plus = name.indexOf('+');
  const convention = plus < 0 ? name : name.slice(0, plus);
  const variant = plus < 0 ? '' : name.slice(plus);
  if (!isConventionName(convention)) throw new RangeError(`unknown convention ${JSON.stringify(convention)} (known: ${conventionNames.join(', ')})`);
  if (variant !== '' && !(variant in kSeriesVariants)) {
    throw new RangeError(`unknown variant ${JSON.stringify(variant)} of ${convention} in ${JSON.stringify(name)} (known: ${Object.keys(kSeriesVariants).join(', ')})`);
  }
  return { series: name as SeriesName, convention, cautious: variant === '+cautious' };
}

export interface GridRun {
  /** 0-based position in the grid (the order runs are trained in). */
  readonly index: number;
  /** Legend name: the convention, or e.g. "pytorch, no exclusion" for the exclusion example. */
  readonly series: string;
  readonly convention: ConventionName;
  /** cautiousWeightDecay set by the series ("+cautious"). */
  readonly cautious: boolean;
  /** The base lr of this run. */
  readonly lr: number;
  /** The weight-decay column: its title, λ (null under a timescale: the optimizer derives it), λ_norm or τ. */
  readonly column: string;
  readonly weightDecay: number | null;
  /** λ_norm it came from (with --normalized-weight-decay). */
  readonly lambdaNorm: number | null;
  /** τ in epochs and iterations (with --timescale). */
  readonly timescale: DecayColumn['timescale'];
  readonly seed: number;
  readonly exclusion: ExclusionSetting;
  /** True for the exclusion-rule example runs. */
  readonly exclusionExample: boolean;
  /** The full config of this run. */
  readonly config: TrainConfig;
}

export interface DecayColumn {
  /** Column title: "λ = 0.01", "λn = 0.05 (λ = 0.0125)", "τ = 5 epochs". */
  readonly label: string;
  /** λ of every run in the column, or null when a timescale sets it run by run. */
  readonly weightDecay: number | null;
  readonly lambdaNorm: number | null;
  readonly timescale: { readonly epochs: number; readonly iterations: number } | null;
}

const short = (x: number) => (x === 0 ? '0' : Math.abs(x) >= 1e-3 ? String(Number(x.toPrecision(3))) : x.toExponential(1));

export function plainColumn(weightDecay: number): DecayColumn {
  return { label: `λ = ${short(weightDecay)}`, weightDecay, lambdaNorm: null, timescale: null };
}

export function normalizedColumn(lambdaNorm: number, weightDecay: number): DecayColumn {
  return { label: `λn = ${short(lambdaNorm)} (λ = ${short(weightDecay)})`, weightDecay, lambdaNorm, timescale: null };
}

/** τ epochs of M = N/B iterations each. */
export function timescaleColumn(epochs: number, iterationsPerEpoch: number): DecayColumn {
  return { label: `τ = ${short(epochs)} epochs`, weightDecay: null, lambdaNorm: null, timescale: { epochs, iterations: epochs * iterationsPerEpoch } };
}

export interface GridSpec {
  readonly base: TrainConfig;
  /** Series: conventions, or conventions with a variant ("pytorch+cautious"). */
  readonly conventions: readonly SeriesName[];
  /** The base lrs (rows). Default: the config's lr alone. */
  readonly lrs?: readonly number[];
  readonly decays: readonly DecayColumn[];
  readonly seeds: number;
  readonly exclusionExample: boolean;
}

/** A readable name of an exclusion rule. */
export function describeExclusion(rule: ExclusionSetting): string {
  if (rule === undefined) return 'none';
  if (rule === 'bert') return `BERT's ${JSON.stringify(bertNoDecay)}`;
  if (rule === 'hf') return `Hugging Face's ${JSON.stringify(hfNoDecay)} (substrings)`;
  if (rule.length === bertNoDecay.length && rule.every((r, i) => r === bertNoDecay[i])) return `BERT's ${JSON.stringify(rule)}`;
  return JSON.stringify(rule);
}

/** The example's rule: the config's rule off when it has one, BERT's list on when it has none. */
export function toggledExclusion(rule: ExclusionSetting): ExclusionSetting {
  return rule === undefined ? [...bertNoDecay] : undefined;
}

export function exampleSeries(series: string, rule: ExclusionSetting): string {
  return rule === undefined ? `${series}, BERT exclusion` : `${series}, no exclusion`;
}

/** The base config with this run's seed, series, lr, decay column and exclusion rule (the config's own λ or τ is replaced). */
function runConfig(base: TrainConfig, s: SeriesSpec, lr: number, d: DecayColumn, seed: number, exclusion: ExclusionSetting): TrainConfig {
  const { excludeFromWeightDecay: _drop, weightDecay: _λ, weightDecayTimescale: _τ, ...optimizer } = base.optimizer;
  const decay = d.timescale === null ? { weightDecay: d.weightDecay! } : { weightDecayTimescale: { iterations: d.timescale.iterations } };
  return parseConfig(
    {
      ...base,
      seed,
      optimizer: {
        ...optimizer,
        convention: s.convention,
        lr,
        ...decay,
        ...(s.cautious ? kSeriesVariants['+cautious'] : {}),
        ...(exclusion === undefined ? {} : { excludeFromWeightDecay: exclusion }),
      },
    },
    'compare run config',
  );
}

/** Every run, seed-major (so an interrupted grid has whole seeds), then lr, then weight decay, then convention. */
export function buildGrid(spec: GridSpec): GridRun[] {
  const runs: GridRun[] = [];
  const rule = spec.base.optimizer.excludeFromWeightDecay;
  const series = spec.conventions.map(parseSeries);
  for (let s = 0; s < spec.seeds; s++) {
    const seed = spec.base.seed + s;
    for (const lr of spec.lrs ?? [spec.base.optimizer.lr]) {
      for (const d of spec.decays) {
        const add = (name: string, which: SeriesSpec, exclusion: ExclusionSetting, example: boolean) =>
          runs.push({
            index: runs.length,
            series: name,
            convention: which.convention,
            cautious: which.cautious,
            lr,
            column: d.label,
            weightDecay: d.weightDecay,
            lambdaNorm: d.lambdaNorm,
            timescale: d.timescale,
            seed,
            exclusion,
            exclusionExample: example,
            config: runConfig(spec.base, which, lr, d, seed, exclusion),
          });
        for (const one of series) add(one.series, one, rule, false);
        // At λ = 0 the rule changes nothing: the example runs only where there is decay to exclude.
        if (spec.exclusionExample && (d.weightDecay === null || d.weightDecay > 0)) {
          const first = series[0];
          add(exampleSeries(first.series, rule), first, toggledExclusion(rule), true);
        }
      }
    }
  }
  return runs;
}
