// A prepared directory, read for training: `train.bin` and `val.bin` (uint16 little-endian token ids back to
// back, what nanoGPT's prepare scripts write with np.uint16.tofile) and what says how to read them:
//   meta.json   written by `shardtrain prepare` (src/corpus/): tokenizer, vocabulary, counts, sources;
//   meta.pkl    nanoGPT's character vocabulary ({vocab_size, itos, stoi}, shakespeare_char);
//   neither     nanoGPT's GPT-2 tokens (openwebtext, shakespeare).
// The tokens are read once, in pieces, into SharedArrayBuffers: every thread can view the same bytes, so a
// 1 GB corpus is 1 GB of memory whatever the thread count. Every id is checked against the vocabulary as
// it is read. Each problem is one line naming the file.

import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { Parser } from 'pickleparser';
import { z } from 'zod';
import { oneLine } from '../util/one-line.js';
import { charTokenizer, gpt2Tokenizer, kGpt2VocabSize, kMaxVocabSize, tokenizerNames, type Tokenizer, type TokenizerName } from './tokenizer.js';

export const kPrepareFormat = 'shardtrain-prepare-1';
export const kPreparedFiles = Object.freeze({ train: 'train.bin', val: 'val.bin', meta: 'meta.json' });
export const kNanoGptMeta = 'meta.pkl';
/** Bytes read per call (a Buffer cannot span more than 4 GiB, and smaller pieces keep the id check in cache). */
const kReadPieceBytes = 1 << 24;

const count = z.number().int().min(0);
const metaSchema = z.strictObject({
  format: z.literal(kPrepareFormat),
  tokenizer: z.enum(tokenizerNames),
  vocabSize: z.number().int().min(1).max(kMaxVocabSize),
  /** char only: the symbol of each id. */
  vocab: z.array(z.string()).optional(),
  tokens: z.strictObject({ train: count, val: count }),
  files: z.strictObject({ train: count, val: count }),
  /** `files`: whole files held out (seeded); `tail`: the last evalFraction of one source's tokens. */
  split: z.enum(['files', 'tail']),
  evalFraction: z.number().min(0).lt(1),
  seed: count,
  /** A token written after each source (gpt2: <|endoftext|>), or null. */
  separator: z.string().nullable(),
  sources: z.array(z.strictObject({ path: z.string(), bytes: count, sha256: z.string().regex(/^[0-9a-f]{64}$/), split: z.enum(['train', 'val']) })),
});
export type PreparedMeta = z.infer<typeof metaSchema>;

export interface PreparedData {
  readonly dir: string;
  /** Who wrote it: shardtrain prepare (meta.json) or one of nanoGPT's prepare scripts. */
  readonly writer: 'shardtrain' | 'nanogpt';
  readonly tokenizer: Tokenizer;
  /** The char vocabulary (symbol of each id), or null for gpt2. */
  readonly vocab: readonly string[] | null;
  /** Token ids, each a Uint16Array over a SharedArrayBuffer (pass `.buffer` to threads: no copy). */
  readonly train: Uint16Array;
  readonly val: Uint16Array;
  /** meta.json, when shardtrain wrote the directory. */
  readonly meta: PreparedMeta | null;
}

/** Every problem with a prepared directory: one line, naming the file. */
export class PreparedDataError extends Error {
  constructor(path: string, message: string) {
    super(oneLine(`prepared data ${path}: ${message}`));
    this.name = 'PreparedDataError';
  }
}

/** What says how to read a prepared directory's ids, without the ids themselves. */
export interface PreparedTokenizer {
  readonly dir: string;
  readonly writer: 'shardtrain' | 'nanogpt';
  readonly tokenizer: Tokenizer;
  readonly meta: PreparedMeta | null;
}

/**
 * The tokenizer of a prepared directory, from its meta.json, nanoGPT's meta.pkl or neither (GPT-2's ids),
 * without reading the token files (what sampling needs of it). `expected` is the tokenizer the caller's
 * config names: a directory prepared with another one is refused (its ids would mean other symbols).
 */
export function openPreparedTokenizer(dir: string, expected?: TokenizerName): PreparedTokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PreparedDataError(dir, 'no such directory');
  for (const f of [kPreparedFiles.train, kPreparedFiles.val]) {
    if (!existsSync(join(dir, f))) throw new PreparedDataError(dir, `no ${f}: not a prepared directory (shardtrain prepare, like nanoGPT's prepare scripts, writes train.bin and val.bin)`);
  }
  const metaPath = join(dir, kPreparedFiles.meta);
  const pklPath = join(dir, kNanoGptMeta);
  let meta: PreparedMeta | null = null;
  let tokenizer: Tokenizer;
  let described: string;
  if (existsSync(metaPath)) {
    meta = readMeta(metaPath);
    tokenizer = meta.tokenizer === 'char' ? charTokenizer(meta.vocab!) : gpt2Tokenizer();
    described = `${kPreparedFiles.meta}`;
  } else if (existsSync(pklPath)) {
    tokenizer = charTokenizer(readNanoGptMeta(pklPath));
    described = `nanoGPT's ${kNanoGptMeta}`;
  } else {
    tokenizer = gpt2Tokenizer();
    described = 'no meta.json or meta.pkl: nanoGPT\'s GPT-2 tokens';
  }
  if (expected !== undefined && expected !== tokenizer.name) {
    throw new PreparedDataError(dir, `was prepared with the ${tokenizer.name} tokenizer (${described}), not ${expected}`);
  }
  return { dir, writer: meta ? 'shardtrain' : 'nanogpt', tokenizer, meta };
}

/**
 * Open a prepared directory: its tokenizer (openPreparedTokenizer, `expected` as there) and both token files,
 * every id checked.
 */
export function openPrepared(dir: string, expected?: TokenizerName): PreparedData {
  const { writer, tokenizer, meta } = openPreparedTokenizer(dir, expected);
  const train = readTokenFile(join(dir, kPreparedFiles.train), tokenizer);
  const val = readTokenFile(join(dir, kPreparedFiles.val), tokenizer);
  if (train.length === 0) throw new PreparedDataError(join(dir, kPreparedFiles.train), 'holds no tokens');
  if (meta && (meta.tokens.train !== train.length || meta.tokens.val !== val.length)) {
    throw new PreparedDataError(join(dir, kPreparedFiles.meta), `says ${meta.tokens.train} training and ${meta.tokens.val} held-out tokens, the files hold ${train.length} and ${val.length}`);
  }
  return { dir, writer, tokenizer, vocab: tokenizer.vocab, train, val, meta };
}

function readMeta(path: string): PreparedMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new PreparedDataError(path, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = metaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const keys = issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')}` : `${issue.path.join('.') || '(top level)'}: ${issue.message}`;
    throw new PreparedDataError(path, keys);
  }
  const meta = parsed.data;
  if (meta.tokenizer === 'char') {
    if (meta.vocab === undefined) throw new PreparedDataError(path, 'a char tokenizer without its vocab');
    if (meta.vocab.length !== meta.vocabSize) throw new PreparedDataError(path, `vocabSize is ${meta.vocabSize} but vocab lists ${meta.vocab.length} symbols`);
    try {
      charTokenizer(meta.vocab);
    } catch (err) {
      throw new PreparedDataError(path, (err as Error).message);
    }
  } else {
    if (meta.vocab !== undefined) throw new PreparedDataError(path, 'a gpt2 tokenizer with a vocab list (GPT-2\'s ranks come from the tokenizer package)');
    if (meta.vocabSize !== kGpt2VocabSize) throw new PreparedDataError(path, `vocabSize is ${meta.vocabSize}, GPT-2's is ${kGpt2VocabSize}`);
  }
  return meta;
}

/** nanoGPT's char meta.pkl ({vocab_size, itos, stoi}) as the symbol of each id, checked both ways. */
export function readNanoGptMeta(path: string): string[] {
  let raw: unknown;
  try {
    raw = new Parser({ unpicklingTypeOfDictionary: 'Map' }).parse(readFileSync(path));
  } catch (err) {
    throw new PreparedDataError(path, `not a pickle that can be read (${(err as Error).message})`);
  }
  if (!(raw instanceof Map)) throw new PreparedDataError(path, 'expected a pickled dict {vocab_size, itos, stoi}');
  const size = raw.get('vocab_size') as unknown;
  const itos = raw.get('itos') as unknown;
  const stoi = raw.get('stoi') as unknown;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > kMaxVocabSize) throw new PreparedDataError(path, `vocab_size is ${String(size)}, expected an integer in [1, ${kMaxVocabSize}]`);
  if (!(itos instanceof Map) || !(stoi instanceof Map)) throw new PreparedDataError(path, 'expected dicts itos (id → character) and stoi (character → id)');
  if (itos.size !== size || stoi.size !== size) throw new PreparedDataError(path, `vocab_size is ${size} but itos has ${itos.size} entries and stoi ${stoi.size}`);
  const vocab: string[] = [];
  for (let id = 0; id < size; id++) {
    const c = itos.get(id) as unknown;
    if (typeof c !== 'string') throw new PreparedDataError(path, `itos has no character for id ${id}`);
    if (stoi.get(c) !== id) throw new PreparedDataError(path, `itos[${id}] is ${JSON.stringify(c)} but stoi[${JSON.stringify(c)}] is ${String(stoi.get(c))}: they disagree`);
    vocab.push(c);
  }
  try {
    charTokenizer(vocab);
  } catch (err) {
    throw new PreparedDataError(path, (err as Error).message);
  }
  return vocab;
}

/** The largest of ids[from, to): a loop without an exit, which V8 compiles tighter than a search. */
function largest(ids: Uint16Array, from: number, to: number): number {
  let m = 0;
  for (let i = from; i < to; i++) m = ids[i] > m ? ids[i] : m;
  return m;
}

/**
 * A .bin file into a Uint16Array over a new SharedArrayBuffer, read in pieces, every id checked against
 * the vocabulary as its piece arrives.
 */
export function readTokenFile(path: string, tokenizer: Pick<Tokenizer, 'name' | 'vocabSize'>): Uint16Array {
  // A Uint16Array reads in the machine's order; the files are little-endian.
  if (endianness() !== 'LE') throw new PreparedDataError(path, 'token files are little-endian; this machine is big-endian');
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size % 2 !== 0) throw new PreparedDataError(path, `${size} bytes, an odd number: not uint16 token ids`);
    const ids = new Uint16Array(new SharedArrayBuffer(size));
    const bytes = new Uint8Array(ids.buffer);
    const limit = tokenizer.vocabSize;
    for (let at = 0; at < size; ) {
      const got = readSync(fd, bytes, at, Math.min(kReadPieceBytes, size - at), at);
      if (got === 0) throw new PreparedDataError(path, `ended after ${at} of ${size} bytes while being read`);
      // at and got are even except for a short read; check the ids whose both bytes have arrived.
      const from = at >> 1;
      const to = (at + got) >> 1;
      if (largest(ids, from, to) >= limit) {
        const i = ids.subarray(from, to).findIndex((id) => id >= limit) + from;
        throw new PreparedDataError(path, `token ${ids[i]} at position ${i} is not below the vocabulary size ${limit} (${tokenizer.name})`);
      }
      at += got;
    }
    return ids;
  } finally {
    closeSync(fd);
  }
}
