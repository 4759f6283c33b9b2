// Tokenizing one piece of text, on the calling thread or as the body of a pool task (the default export,
// run by the pool's parallelFor machinery: `{ kind: 'for', module: this file, args }`). Each thread builds
// its tokenizer once and keeps it while the vocabulary is the same.

import { charTokenizer, gpt2Tokenizer, type Tokenizer, type TokenizerName } from '../models/tokenizer.js';

/** What a thread needs to build the tokenizer: its name and, for char, the symbols joined into one string. */
export interface TokenizerSpec {
  readonly name: TokenizerName;
  readonly vocab?: string;
}

let cached: { spec: TokenizerSpec; tokenizer: Tokenizer } | null = null;

export function tokenizerFor(spec: TokenizerSpec): Tokenizer {
  if (cached === null || cached.spec.name !== spec.name || cached.spec.vocab !== spec.vocab) {
    cached = { spec, tokenizer: spec.name === 'gpt2' ? gpt2Tokenizer() : charTokenizer([...(spec.vocab ?? '')]) };
  }
  return cached.tokenizer;
}

/** The ids of `text` as uint16 (every tokenizer here has at most 65,536 ids). */
export function tokenizePiece(spec: TokenizerSpec, text: string): Uint16Array {
  return Uint16Array.from(tokenizerFor(spec).encode(text));
}

export default function tokenizeTask(_range: unknown, _buffers: unknown, args: { spec: TokenizerSpec; text: string }): Uint16Array {
  return tokenizePiece(args.spec, args.text);
}
