// Which tensors decay, and by how much. Rules are matched once, when the optimizer is created, into a
// per-tensor table (λ, lr multiplier); the kernels only ever see numbers.

/** Google BERT's `exclude_from_weight_decay` list (regex, search semantics). */
export const bertNoDecay: readonly string[] = Object.freeze(['LayerNorm', 'layer_norm', 'bias']);
/** Hugging Face examples' `no_decay = ["bias", "LayerNorm.weight"]`: plain substring match. */
export const hfNoDecay: readonly string[] = Object.freeze(['bias', 'LayerNorm.weight']);

/** A name matcher: regex strings / RegExps (search semantics), a predicate, exact names, or substrings. */
export type NameMatcher =
  | string
  | RegExp
  | readonly (string | RegExp)[]
  | ((name: string) => boolean)
  | { readonly names: readonly string[] }
  | { readonly substrings: readonly string[] };

/** `'bert'` and `'hf'` are the two presets above; anything else is a NameMatcher. */
export type ExclusionRule = NameMatcher | 'bert' | 'hf';

export interface ParamGroup {
  /** Tensors this group applies to; the first group that matches a tensor wins. */
  readonly match: NameMatcher;
  /** Multiplies the scheduled lr for these tensors. Default 1. */
  readonly lrMultiplier?: number;
  /** Replaces the optimizer's weightDecay for these tensors. */
  readonly weightDecay?: number;
}

export interface TensorDecayEntry {
  readonly name: string;
  readonly weightDecay: number;
  readonly lrMultiplier: number;
  readonly excluded: boolean;
  /** Index of the parameter group that matched, or -1. */
  readonly group: number;
}

function compileRegex(source: string, where: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new SyntaxError(`${where}: invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message}`);
  }
}

/** Turn a matcher into a predicate, validating it (a bad regex is reported with where it came from). */
export function compileMatcher(matcher: NameMatcher, where: string): (name: string) => boolean {
  if (typeof matcher === 'function') return matcher;
  if (typeof matcher === 'string' || matcher instanceof RegExp) return compileMatcher([matcher], where);
  if (Array.isArray(matcher)) {
    const regexes = (matcher as readonly (string | RegExp)[]).map((m, i) => {
      if (m instanceof RegExp) return new RegExp(m.source, m.flags.replace(/[gy]/g, ''));
      if (typeof m !== 'string') throw new TypeError(`${where}[${i}] must be a string or RegExp, got ${typeof m}`);
      return compileRegex(m, `${where}[${i}]`);
    });
    return (name) => regexes.some((r) => r.test(name));
  }
  if (matcher !== null && typeof matcher === 'object') {
    if ('names' in matcher && Array.isArray(matcher.names)) {
      const names = new Set(matcher.names);
      return (name) => names.has(name);
    }
    if ('substrings' in matcher && Array.isArray(matcher.substrings)) {
      const subs = [...matcher.substrings];
      return (name) => subs.some((s) => name.includes(s));
    }
  }
  throw new TypeError(
    `${where} must be regex strings, RegExps, a function, { names: [...] } or { substrings: [...] }, got ${JSON.stringify(matcher)}`,
  );
}

export function compileExclusion(rule: ExclusionRule | undefined): (name: string) => boolean {
  if (rule === undefined) return () => false;
  if (rule === 'bert') return compileMatcher(bertNoDecay, 'excludeFromWeightDecay');
  if (rule === 'hf') return compileMatcher({ substrings: hfNoDecay }, 'excludeFromWeightDecay');
  return compileMatcher(rule, 'excludeFromWeightDecay');
}

/** Resolve λ and the lr multiplier of every tensor, once. Exclusion beats a group's weightDecay. */
export function compileDecayTable(
  names: readonly string[],
  weightDecay: number,
  exclude: ExclusionRule | undefined,
  groups: readonly ParamGroup[] = [],
): TensorDecayEntry[] {
  const isExcluded = compileExclusion(exclude);
  const compiledGroups = groups.map((g, i) => {
    if (g === null || typeof g !== 'object') throw new TypeError(`paramGroups[${i}] must be an object, got ${String(g)}`);
    const lrMultiplier = g.lrMultiplier ?? 1;
    if (typeof lrMultiplier !== 'number' || !Number.isFinite(lrMultiplier) || lrMultiplier < 0) {
      throw new RangeError(`paramGroups[${i}].lrMultiplier must be a finite number >= 0, got ${g.lrMultiplier}`);
    }
    if (g.weightDecay !== undefined && (typeof g.weightDecay !== 'number' || !Number.isFinite(g.weightDecay) || g.weightDecay < 0)) {
      throw new RangeError(`paramGroups[${i}].weightDecay must be a finite number >= 0, got ${g.weightDecay}`);
    }
    return { test: compileMatcher(g.match, `paramGroups[${i}].match`), lrMultiplier, weightDecay: g.weightDecay };
  });
  return names.map((name) => {
    const group = compiledGroups.findIndex((g) => g.test(name));
    const g = group >= 0 ? compiledGroups[group] : undefined;
    const excluded = isExcluded(name);
    return {
      name,
      excluded,
      group,
      lrMultiplier: g?.lrMultiplier ?? 1,
      weightDecay: excluded ? 0 : (g?.weightDecay ?? weightDecay),
    };
  });
}

export interface NormalizedWeightDecayOptions {
  /** λ_norm of the paper. */
  readonly lambdaNorm: number;
  /** Batch size b. */
  readonly batchSize: number;
  /** Training points B. */
  readonly datasetSize: number;
  /** Epochs T. */
  readonly epochs: number;
}

/** Loshchilov & Hutter's normalized weight decay: λ = λ_norm·√(b / (B·T)). */
export function normalizedWeightDecay(o: NormalizedWeightDecayOptions): number {
  for (const key of ['lambdaNorm', 'batchSize', 'datasetSize', 'epochs'] as const) {
    const x = o[key];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || (key !== 'lambdaNorm' && x === 0)) {
      throw new RangeError(`normalizedWeightDecay: ${key} must be a finite number ${key === 'lambdaNorm' ? '>= 0' : '> 0'}, got ${x}`);
    }
  }
  return o.lambdaNorm * Math.sqrt(o.batchSize / (o.datasetSize * o.epochs));
}
