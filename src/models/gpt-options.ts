// The built-in GPT's options (config model.options of "module": "gpt"): the transformer's shape, where its
// text comes from (the State of the Union addresses, or a prepared directory) and where its initial values
// come from (GPT-2's init, or a GPT-2 checkpoint). Defaults in one frozen object, one merge, then a flat run
// of checks whose messages name the key and the value.

import { tokenizerNames, type TokenizerName } from './tokenizer.js';

/** The built-in corpus: the State of the Union addresses, as characters (sotu.ts). */
export const kSotuData = 'sotu';

export interface GptOptions {
  /** Tokens per training window, and the longest context the model sees. Default 128. */
  contextLength: number;
  /** Width C of the residual stream. Default 128. */
  embedding: number;
  /** Attention heads; must divide embedding. Default 4. */
  heads: number;
  /** Transformer blocks. Default 4. */
  layers: number;
  /** MLP width = mlpRatio × embedding (an integer). Default 4. */
  mlpRatio: number;
  /** The head reuses the token embedding (logits = x·wteᵀ). Default true. */
  tieEmbeddings: boolean;
  /**
   * Biases in every Linear and β in every LayerNorm (GPT-2's). false: nanoGPT's bias-free variant (its
   * `bias=False`), which only the shardtrain engine runs. Default true.
   */
  bias: boolean;
  /**
   * "sotu" (default): the State of the Union addresses as characters; or a directory `shardtrain prepare`
   * or one of nanoGPT's prepare scripts wrote (train.bin, val.bin), relative to the working directory.
   */
  data: string;
  /** The tokenizer the data must have been prepared with (refused otherwise); null: whatever it has. Default null. */
  tokenizer: TokenizerName | null;
  /** A GPT-2 model.safetensors (Hugging Face's layout) to start from, relative to the working directory; null: GPT-2's random init. Default null. */
  init: string | null;
  /** data "sotu" only: the share of the addresses held out, whole. Default 0.05 (12 of 233). */
  evalFraction: number;
  /** At most this many held-out windows, non-overlapping and spread evenly over the held-out text. Default 256. */
  evalWindows: number;
}

export const gptDefaults: GptOptions = Object.freeze({
  contextLength: 128,
  embedding: 128,
  heads: 4,
  layers: 4,
  mlpRatio: 4,
  tieEmbeddings: true,
  bias: true,
  data: kSotuData,
  tokenizer: null,
  init: null,
  evalFraction: 0.05,
  evalWindows: 256,
});

export function resolveGptOptions(raw: Readonly<Record<string, unknown>>): GptOptions {
  for (const key of Object.keys(raw)) if (!(key in gptDefaults)) throw new RangeError(`gpt: unknown key model.options.${key} (known: ${Object.keys(gptDefaults).join(', ')})`);
  const o = { ...gptDefaults, ...raw } as GptOptions;
  const got = (x: unknown) => JSON.stringify(x) ?? String(x);
  const posInt = (key: keyof GptOptions) => {
    const x = o[key];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new RangeError(`gpt: model.options.${key} must be a positive integer, got ${got(x)}`);
  };
  const flag = (key: 'tieEmbeddings' | 'bias') => {
    if (typeof o[key] !== 'boolean') throw new RangeError(`gpt: model.options.${key} must be true or false, got ${got(o[key])}`);
  };
  const path = (key: 'data' | 'init', nullable: boolean) => {
    const x = o[key];
    if (!(typeof x === 'string' && x.length > 0) && !(nullable && x === null)) {
      throw new RangeError(`gpt: model.options.${key} must be ${key === 'data' ? `"${kSotuData}" or a prepared directory` : 'the path of a GPT-2 model.safetensors, or null'}, got ${got(x)}`);
    }
  };
  (['contextLength', 'embedding', 'heads', 'layers', 'evalWindows'] as const).forEach(posInt);
  if (o.embedding % o.heads !== 0) throw new RangeError(`gpt: model.options.embedding (${o.embedding}) must be divisible by heads (${o.heads})`);
  if (typeof o.mlpRatio !== 'number' || !(o.mlpRatio > 0) || !Number.isInteger(o.mlpRatio * o.embedding)) {
    throw new RangeError(`gpt: model.options.mlpRatio must be a positive number with mlpRatio × embedding an integer, got ${got(o.mlpRatio)}`);
  }
  flag('tieEmbeddings');
  flag('bias');
  path('data', false);
  path('init', true);
  if (o.tokenizer !== null && !(tokenizerNames as readonly unknown[]).includes(o.tokenizer)) {
    throw new RangeError(`gpt: model.options.tokenizer must be one of ${tokenizerNames.map((n) => `"${n}"`).join(', ')} or null, got ${got(o.tokenizer)}`);
  }
  if (o.data === kSotuData && o.tokenizer !== null && o.tokenizer !== 'char') {
    throw new RangeError(`gpt: model.options.tokenizer is "${o.tokenizer}", but data "${kSotuData}" is characters: prepare a directory with --tokenizer ${o.tokenizer} and give it as model.options.data`);
  }
  if (typeof o.evalFraction !== 'number' || !(o.evalFraction > 0 && o.evalFraction < 1)) {
    throw new RangeError(`gpt: model.options.evalFraction must be in (0, 1), got ${got(o.evalFraction)}`);
  }
  // A prepared directory was split when it was prepared: an evalFraction here would be silently ignored.
  if (o.data !== kSotuData && Object.hasOwn(raw, 'evalFraction')) {
    throw new RangeError(`gpt: model.options.evalFraction applies to data "${kSotuData}"; the prepared directory ${o.data} holds its own split (shardtrain prepare --eval-fraction)`);
  }
  return o;
}
