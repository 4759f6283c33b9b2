// The grid of `shardtrain compare`: one run per (convention, weight decay, seed), all from the same config,
// plus the exclusion-rule example (the first convention with the config's exclusion rule toggled, at every
// λ > 0). Runs of the same seed share the initial values, the data split and the data order (all seeded by
// config.seed), so within a seed the only difference between two runs is the optimizer.

import type { ConventionName } from '../optim/conventions.js';
import { bertNoDecay, hfNoDecay } from '../optim/decay-rules.js';
import { parseConfig, type TrainConfig } from '../train/config.js';

export type ExclusionSetting = TrainConfig['optimizer']['excludeFromWeightDecay'];

export interface GridRun {
  /** 0-based position in the grid (the order runs are trained in). */
  readonly index: number;
  /** Legend name: the convention, or e.g. "pytorch, no exclusion" for the exclusion example. */
  readonly series: string;
  readonly convention: ConventionName;
  /** λ given to the optimizer. */
  readonly weightDecay: number;
  /** λ_norm it came from (with --normalized-weight-decay). */
  readonly lambdaNorm: number | null;
  readonly seed: number;
  readonly exclusion: ExclusionSetting;
  /** True for the exclusion-rule example runs. */
  readonly exclusionExample: boolean;
  /** The full config of this run. */
  readonly config: TrainConfig;
}

export interface GridSpec {
  readonly base: TrainConfig;
  readonly conventions: readonly ConventionName[];
  /** λ values, with the λ_norm each came from (null for plain λ). */
  readonly decays: readonly { readonly weightDecay: number; readonly lambdaNorm: number | null }[];
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

export function exampleSeries(convention: ConventionName, rule: ExclusionSetting): string {
  return rule === undefined ? `${convention}, BERT exclusion` : `${convention}, no exclusion`;
}

function runConfig(base: TrainConfig, convention: ConventionName, weightDecay: number, seed: number, exclusion: ExclusionSetting): TrainConfig {
  const { excludeFromWeightDecay: _drop, ...optimizer } = base.optimizer;
  return parseConfig(
    {
      ...base,
      seed,
      optimizer: { ...optimizer, convention, weightDecay, ...(exclusion === undefined ? {} : { excludeFromWeightDecay: exclusion }) },
    },
    'compare run config',
  );
}

/** Every run, seed-major (so an interrupted grid has whole seeds), then weight decay, then convention. */
export function buildGrid(spec: GridSpec): GridRun[] {
  const runs: GridRun[] = [];
  const rule = spec.base.optimizer.excludeFromWeightDecay;
  for (let s = 0; s < spec.seeds; s++) {
    const seed = spec.base.seed + s;
    for (const d of spec.decays) {
      const add = (series: string, convention: ConventionName, exclusion: ExclusionSetting, example: boolean) =>
        runs.push({
          index: runs.length,
          series,
          convention,
          weightDecay: d.weightDecay,
          lambdaNorm: d.lambdaNorm,
          seed,
          exclusion,
          exclusionExample: example,
          config: runConfig(spec.base, convention, d.weightDecay, seed, exclusion),
        });
      for (const convention of spec.conventions) add(convention, convention, rule, false);
      // At λ = 0 the rule changes nothing: the example runs only where there is decay to exclude.
      if (spec.exclusionExample && d.weightDecay > 0) {
        const first = spec.conventions[0];
        const toggled = toggledExclusion(rule);
        add(exampleSeries(first, rule), first, toggled, true);
      }
    }
  }
  return runs;
}
