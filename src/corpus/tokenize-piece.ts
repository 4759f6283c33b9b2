// Tokenizing one piece of text, on the calling thread or as the body of a pool task (the default export,
// run by the pool's parallelFor machinery: `{ kind: 'for', module: this file, args }`). Each thread builds
// its tokenizer once and keeps it while the vocabulary is the same.

import { tokenizerFor, type TokenizerSpec } from '../models/tokenizer.js';

export type { TokenizerSpec } from '../models/tokenizer.js';

/** The ids of `text` as uint16 (every tokenizer here has at most 65,536 ids). */
export function tokenizePiece(spec: TokenizerSpec, text: string): Uint16Array {
  return Uint16Array.from(tokenizerFor(spec).encode(text));
}

export default function tokenizeTask(_range: unknown, _buffers: unknown, args: { spec: TokenizerSpec; text: string }): Uint16Array {
  return tokenizePiece(args.spec, args.text);
}
