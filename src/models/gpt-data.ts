// The GPT's text, as token windows: the State of the Union addresses as characters (data "sotu", sotu.ts),
// or a prepared directory (prepared.ts: what `shardtrain prepare` and nanoGPT's prepare scripts write). The
// meta says which tokenizer the ids are of, as data (TokenizerSpec: structured-cloneable, so the workers
// and `shardtrain sample` rebuild the same tokenizer), and the vocabulary size the model is built over.
//
// A prepared directory's ids stay as they were read: Uint16Arrays over SharedArrayBuffers, handed to every
// thread without a copy. Its split is the one `prepare` made: training windows at every offset of
// train.bin, at most evalWindows held-out windows spread over val.bin.

import { join } from 'node:path';
import type { DataSet } from './model-module.js';
import { kSotuData, resolveGptOptions, type GptOptions } from './gpt-options.js';
import { kPreparedFiles, openPrepared, openPreparedTokenizer, PreparedDataError, type PreparedTokenizer } from './prepared.js';
import { encode, encodeDropping, evalStride, sotuCorpus, type SotuCorpus } from './sotu.js';
import { tokenizerSpec, type TokenizerSpec } from './tokenizer.js';

/** data "sotu": which addresses each side holds. */
export interface SotuSplit {
  readonly kind: 'sotu';
  readonly trainYears: readonly number[];
  readonly evalYears: readonly number[];
  /** Held-out characters left out because the training text never has them. */
  readonly evalDropped: number;
}

/** A prepared directory: who wrote it. */
export interface PreparedSplit {
  readonly kind: 'prepared';
  readonly writer: 'shardtrain' | 'nanogpt';
}

export interface GptMeta {
  /** The ids' tokenizer (tokenizerFor rebuilds it). */
  readonly tokenizer: TokenizerSpec;
  /** Rows of wte: the tokenizer's vocabulary (GPT-2's: 50,257). */
  readonly vocabSize: number;
  readonly contextLength: number;
  /** model.options.data: "sotu" or the directory. */
  readonly data: string;
  readonly split: SotuSplit | PreparedSplit;
}

/** A window of L tokens needs L + 1 of them (its targets are shifted by one). */
function checkLength(ids: Uint16Array, dir: string, file: string, L: number): void {
  if (ids.length >= L + 1) return;
  const remedy = file === kPreparedFiles.val ? 'prepare with a larger --eval-fraction, or use' : 'use more text, or';
  throw new PreparedDataError(join(dir, file), `holds ${ids.length} tokens, fewer than one window of model.options.contextLength ${L} and its target: ${remedy} a shorter contextLength`);
}

/** The meta of data "sotu" (a split of the addresses, `dropped` held-out characters left out). */
function sotuMeta(corpus: SotuCorpus, contextLength: number, dropped: number): GptMeta {
  const split: SotuSplit = { kind: 'sotu', trainYears: corpus.trainYears, evalYears: corpus.evalYears, evalDropped: dropped };
  return { tokenizer: { name: 'char', vocab: corpus.vocab.join('') }, vocabSize: corpus.vocab.length, contextLength, data: kSotuData, split };
}

function preparedMeta(d: PreparedTokenizer, o: GptOptions): GptMeta {
  return { tokenizer: tokenizerSpec(d.tokenizer), vocabSize: d.tokenizer.vocabSize, contextLength: o.contextLength, data: o.data, split: { kind: 'prepared', writer: d.writer } };
}

export function loadData({ options, seed }: { options: Readonly<Record<string, unknown>>; seed: number }): DataSet {
  const o = resolveGptOptions(options);
  const L = o.contextLength;
  if (o.data === kSotuData) {
    const corpus = sotuCorpus(seed, o.evalFraction);
    const train = encode(corpus.trainText, corpus.vocab, 'the training text');
    const held = encodeDropping(corpus.evalText, corpus.vocab);
    return {
      train: { tokens: train, window: L },
      eval: { tokens: held.tokens, window: L, stride: evalStride(held.tokens.length, L, o.evalWindows) },
      meta: sotuMeta(corpus, L, held.dropped),
    };
  }
  const d = openPrepared(o.data, o.tokenizer ?? undefined);
  checkLength(d.train, o.data, kPreparedFiles.train, L);
  checkLength(d.val, o.data, kPreparedFiles.val, L);
  return {
    train: { tokens: d.train, window: L },
    eval: { tokens: d.val, window: L, stride: evalStride(d.val.length, L, o.evalWindows) },
    meta: preparedMeta(d, o),
  };
}

/** loadData()'s meta without the token files (what sampling needs): the tokenizer and the vocabulary size. */
export function loadMeta({ options, seed }: { options: Readonly<Record<string, unknown>>; seed: number }): GptMeta {
  const o = resolveGptOptions(options);
  if (o.data !== kSotuData) return preparedMeta(openPreparedTokenizer(o.data, o.tokenizer ?? undefined), o);
  const corpus = sotuCorpus(seed, o.evalFraction);
  return sotuMeta(corpus, o.contextLength, encodeDropping(corpus.evalText, corpus.vocab).dropped);
}

/** Rows of the token embedding for these options: the data's vocabulary size (the token files are not read). */
export function gptVocabSize(o: GptOptions, seed: number): number {
  return o.data === kSotuData ? sotuCorpus(seed, o.evalFraction).vocab.length : openPreparedTokenizer(o.data, o.tokenizer ?? undefined).tokenizer.vocabSize;
}
