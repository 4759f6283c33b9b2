// Text ↔ token ids, one interface for `shardtrain prepare`, the reader of a prepared directory and
// `shardtrain sample`. Two tokenizers:
//   char  the vocabulary is a list of characters (Unicode code points), an id is an index into it
//         (nanoGPT's shakespeare_char: sorted(set(text)), itos / stoi);
//   gpt2  GPT-2's byte-level BPE, r50k_base: 50,257 tokens, id 50256 is <|endoftext|>. From the npm package
//         gpt-tokenizer, which ships the ranks inside the package (nothing is downloaded); loaded on first
//         use (≈ 0.1 s), so a char model never pays for it. Text is encoded as ordinary text: a literal
//         "<|endoftext|>" in a corpus is the characters, not the special token (tiktoken's encode_ordinary,
//         which nanoGPT's prepare scripts call).
// Ids must fit uint16 (the .bin format), so a char vocabulary holds at most 65,536 symbols.

import { createRequire } from 'node:module';
import { TextDecoder } from 'node:util';

export const tokenizerNames = ['char', 'gpt2'] as const;
export type TokenizerName = (typeof tokenizerNames)[number];

export interface Tokenizer {
  readonly name: TokenizerName;
  readonly vocabSize: number;
  /** char: the symbol of each id; gpt2: null (the ranks are the package's). */
  readonly vocab: readonly string[] | null;
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
}

/** Ids are stored as uint16. */
export const kMaxVocabSize = 65536;
export const kGpt2VocabSize = 50257;
/** <|endoftext|>: written after each document by `prepare --tokenizer gpt2`, as nanoGPT's openwebtext does. */
export const kGpt2EndOfText = 50256;

/** A code point for messages: "é" (U+00E9). */
export function showChar(c: string): string {
  return `${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
}

/** Checks the vocabulary once and builds the lookup: a table for the BMP, a map for the rest. */
export function charTokenizer(vocab: readonly string[]): Tokenizer {
  if (vocab.length === 0) throw new RangeError('char tokenizer: the vocabulary is empty');
  if (vocab.length > kMaxVocabSize) throw new RangeError(`char tokenizer: ${vocab.length} symbols do not fit uint16 token ids (at most ${kMaxVocabSize})`);
  const bmp = new Int32Array(0x10000).fill(-1);
  const astral = new Map<number, number>();
  vocab.forEach((c, id) => {
    const cp = typeof c === 'string' ? c.codePointAt(0) : undefined;
    if (cp === undefined || String.fromCodePoint(cp) !== c) throw new RangeError(`char tokenizer: vocabulary entry ${id} is ${JSON.stringify(c)}, not one character`);
    if ((cp < 0x10000 ? bmp[cp] : (astral.get(cp) ?? -1)) >= 0) throw new RangeError(`char tokenizer: ${showChar(c)} is in the vocabulary twice`);
    if (cp < 0x10000) bmp[cp] = id;
    else astral.set(cp, id);
  });
  const frozen = Object.freeze([...vocab]);
  return {
    name: 'char',
    vocabSize: vocab.length,
    vocab: frozen,
    encode(text: string): number[] {
      const ids: number[] = [];
      for (let i = 0; i < text.length; i++) {
        const cp = text.codePointAt(i)!;
        const id = cp < 0x10000 ? bmp[cp] : (astral.get(cp) ?? -1);
        if (id < 0) throw new RangeError(`the character ${showChar(String.fromCodePoint(cp))} at ${i} is not in the vocabulary of ${vocab.length} characters`);
        ids.push(id);
        if (cp >= 0x10000) i++; // the low surrogate
      }
      return ids;
    },
    decode(ids: ArrayLike<number>): string {
      let s = '';
      for (let i = 0; i < ids.length; i++) {
        const c = frozen[ids[i]];
        if (c === undefined) throw new RangeError(`token id ${ids[i]} at ${i} is not in the vocabulary of ${vocab.length} characters`);
        s += c;
      }
      return s;
    },
  };
}

interface Gpt2Package {
  encode(text: string, options?: { disallowedSpecial?: Set<string> }): number[];
  decode(ids: Iterable<number>): string;
  vocabularySize: number;
}

let gpt2: Tokenizer | null = null;

/**
 * A tokenizer as data, for threads and metadata (structured-cloneable, and small: a char vocabulary is one
 * string of its symbols in id order, each one code point).
 */
export interface TokenizerSpec {
  readonly name: TokenizerName;
  readonly vocab?: string;
}

/** The spec of a tokenizer (the inverse of tokenizerFor). */
export function tokenizerSpec(t: Pick<Tokenizer, 'name' | 'vocab'>): TokenizerSpec {
  return t.name === 'char' ? { name: 'char', vocab: t.vocab!.join('') } : { name: t.name };
}

let cached: { spec: TokenizerSpec; tokenizer: Tokenizer } | null = null;

/** The tokenizer of `spec`, kept for the next call with the same spec (a thread builds it once). */
export function tokenizerFor(spec: TokenizerSpec): Tokenizer {
  if (cached === null || cached.spec.name !== spec.name || cached.spec.vocab !== spec.vocab) {
    cached = { spec, tokenizer: spec.name === 'gpt2' ? gpt2Tokenizer() : charTokenizer([...(spec.vocab ?? '')]) };
  }
  return cached.tokenizer;
}

/** GPT-2's tokenizer (r50k_base), shared by every caller on this thread. */
export function gpt2Tokenizer(): Tokenizer {
  if (gpt2 !== null) return gpt2;
  // require, not import: synchronous and on first use (the ranks take ≈ 0.1 s to load).
  const require = createRequire(import.meta.url);
  const pkg = require('gpt-tokenizer/encoding/r50k_base') as Gpt2Package;
  // gpt-tokenizer 4.0's decode() runs every call's bytes through one module-wide TextDecoder with
  // { stream: true } and never ends the stream: ids that end inside a UTF-8 character (a sample cut after
  // any of GPT-2's byte tokens) leave those bytes in it, and they come out at the start of the *next*
  // call's text, whoever makes it. Ending the stream after each call gives what a one-shot decode gives
  // (tiktoken's errors="replace": U+FFFD for the incomplete character) and leaves nothing behind.
  const { decoder } = require('gpt-tokenizer/BytePairEncodingCore') as { decoder?: TextDecoder };
  if (!(decoder instanceof TextDecoder)) throw new Error('gpt-tokenizer: BytePairEncodingCore no longer exports its decoder (see gpt2Tokenizer in src/models/tokenizer.ts)');
  if (pkg.vocabularySize !== kGpt2VocabSize) throw new Error(`gpt-tokenizer's r50k_base has ${pkg.vocabularySize} tokens, expected ${kGpt2VocabSize}`);
  // No special token is recognised in text: encode_ordinary.
  const ordinary = { disallowedSpecial: new Set<string>() };
  gpt2 = Object.freeze({
    name: 'gpt2',
    vocabSize: kGpt2VocabSize,
    vocab: null,
    encode: (text: string): number[] => pkg.encode(text, ordinary),
    decode(ids: ArrayLike<number>): string {
      for (let i = 0; i < ids.length; i++) {
        if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= kGpt2VocabSize) throw new RangeError(`token id ${ids[i]} at ${i} is not in GPT-2's vocabulary of ${kGpt2VocabSize}`);
      }
      return pkg.decode(Array.from(ids)) + decoder.decode();
    },
  } satisfies Tokenizer);
  return gpt2;
}
