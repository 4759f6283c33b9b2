// `shardtrain prepare`: text files → a prepared directory (train.bin, val.bin, meta.json; the format and
// its reader are in src/models/prepared.ts).
//   1. Sources: the files and folders named (sources.ts), or standard input (first copied to a temp file
//      in the output directory: the char vocabulary needs two passes).
//   2. The split: with several sources, whole files are held out (round(n · evalFraction), at least 1, at
//      most n − 1, chosen by a seeded permutation); with one, the last evalFraction of its tokens.
//   3. char: one pass over every source for the vocabulary, the sorted set of the corpus' code points
//      (held-out text included, so no held-out character is lost; a symbol seen only there keeps the
//      embedding it was initialised with). gpt2: GPT-2's 50,257 tokens, and <|endoftext|> after each source.
//   4. One pass that reads each source in chunks (text-pieces.ts), tokenizes the pieces on the pool's
//      threads (a bounded number in flight: memory does not grow with the corpus) and writes the ids in
//      piece order, so the bytes of train.bin are the same for any thread count.
// Everything is written to temp files in the output directory and renamed at the end; a failure removes
// them (and the directory, when this run made it), leaving it as it was.

import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createPool, type WorkerPool } from '../parallel/pool.js';
import { kPrepareFormat, kPreparedFiles, type PreparedMeta } from '../models/prepared.js';
import { mixSeed, permutation } from '../models/random.js';
import { gpt2Tokenizer, kGpt2EndOfText, kGpt2VocabSize, kMaxVocabSize, tokenizerNames, type TokenizerName } from '../models/tokenizer.js';
import { oneLine } from '../util/one-line.js';
import { kDefaultGlob, listSources, type Source } from './sources.js';
import { textPieces, type PieceBoundary } from './text-pieces.js';
import { tokenizePiece, type TokenizerSpec } from './tokenize-piece.js';

export interface PrepareOptions {
  /** Files, folders (recursively, the files whose name matches `glob`) and '-' for standard input. */
  inputs: readonly string[];
  /** The output directory: new, empty, or a previous prepare's (whose three files are replaced). */
  out: string;
  /** Default 'char'. */
  tokenizer?: TokenizerName;
  /** Fraction held out. Default 0.1 (nanoGPT's 90/10). */
  evalFraction?: number;
  /** Seeds which files are held out. Default 0. */
  seed?: number;
  /** Which files of a folder are read. Default '*.{txt,md}' (a glob without '/' matches the file's name). */
  glob?: string;
  /**
   * Tokenizing threads. Default: one per 32 MiB of input, at most os.availableParallelism(): a thread's start
   * (its tokenizer's ranks, a cold BPE cache) costs more than it gives on a small corpus (SOTU's 10.8 MB:
   * 2 threads 2.58 s against 1 thread's 1.36 s, `npm run bench:prepare`).
   */
  threads?: number;
  /** Read for '-'. Default process.stdin. */
  stdin?: Readable;
  /** Bytes read per chunk (and so the size of a piece of work). Default 1 MiB. */
  chunkBytes?: number;
  /** Called after each chunk is read. */
  onProgress?: (p: PrepareProgress) => void;
}

export interface PrepareProgress {
  /** 'vocabulary': the char tokenizer's first pass; 'tokens': the pass that writes. */
  readonly phase: 'vocabulary' | 'tokens';
  readonly bytes: number;
  readonly totalBytes: number;
}

export interface PrepareResult {
  readonly out: string;
  readonly meta: PreparedMeta;
  /** Threads that tokenized (1: on the calling thread). */
  readonly threads: number;
}

export const prepareDefaults = Object.freeze({ tokenizer: 'char' as TokenizerName, evalFraction: 0.1, seed: 0, glob: kDefaultGlob, chunkBytes: 1 << 20 });

/** Every problem: one line, nothing written. */
export class PrepareError extends Error {
  constructor(message: string) {
    super(oneLine(message));
    this.name = 'PrepareError';
  }
}

/** Salt of the held-out permutation (as sotu.ts salts its own). */
const kSplitSalt = 0x7e57;

/** Pieces in flight per thread: enough to keep every thread busy while the main thread reads. */
const kInFlightPerThread = 3;
/** Input per thread when `threads` is not given (see PrepareOptions.threads). */
const kBytesPerDefaultThread = 32 << 20;

function checkOptions(o: PrepareOptions): Required<Omit<PrepareOptions, 'stdin' | 'onProgress'>> {
  // threads 0: not given, chosen from the corpus size once it is known (prepare()).
  const r = { ...prepareDefaults, threads: 0, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as Required<PrepareOptions>;
  if (!Array.isArray(r.inputs) || r.inputs.length === 0) throw new PrepareError('no input: name text files, folders, or - for standard input');
  if (r.inputs.filter((i) => i === '-').length > 1) throw new PrepareError("'-' (standard input) is given more than once");
  if (typeof r.out !== 'string' || r.out === '') throw new PrepareError('--out DIR is required');
  if (!tokenizerNames.includes(r.tokenizer)) throw new PrepareError(`--tokenizer must be one of ${tokenizerNames.join(', ')}, got ${JSON.stringify(r.tokenizer)}`);
  if (typeof r.evalFraction !== 'number' || !(r.evalFraction >= 0 && r.evalFraction < 1)) throw new PrepareError(`--eval-fraction must be a number in [0, 1), got ${r.evalFraction}`);
  if (!Number.isSafeInteger(r.seed) || r.seed < 0) throw new PrepareError(`--seed must be a non-negative integer, got ${r.seed}`);
  if (o.threads !== undefined && (!Number.isInteger(r.threads) || r.threads < 1)) throw new PrepareError(`--threads must be a positive integer, got ${r.threads}`);
  if (!Number.isInteger(r.chunkBytes) || r.chunkBytes < 16) throw new PrepareError(`chunkBytes must be an integer >= 16, got ${r.chunkBytes}`);
  return r;
}

/** Our files in a prepared directory: the three outputs and the temp files of a write. */
const isTemp = (file: string): boolean => /^\.(train\.bin|val\.bin|meta\.json|stdin)\.\d+\.tmp$/.test(file);

/**
 * The output directory may be new, empty, or hold a previous prepare's files (meta.json of this format),
 * which are replaced; anything else in it is refused, so that nothing of the user's is overwritten.
 */
function checkOutDir(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new PrepareError(`--out ${out} is a file, not a directory`);
  const files = readdirSync(out).filter((f) => !isTemp(f));
  if (files.length === 0) return;
  let ours = false;
  try {
    ours = (JSON.parse(readFileSync(join(out, kPreparedFiles.meta), 'utf8')) as { format?: unknown }).format === kPrepareFormat;
  } catch {
    ours = false;
  }
  const mine = new Set<string>(Object.values(kPreparedFiles));
  const foreign = files.find((f) => !ours || !mine.has(f));
  if (foreign !== undefined) {
    throw new PrepareError(`--out ${out} holds ${foreign}, which is not a previous prepare's output: choose a new or empty directory (a previous prepare's train.bin, val.bin and meta.json are replaced)`);
  }
}

/** Which sources are held out: round(n · f) whole files (at least 1, at most n − 1) by a seeded permutation. */
export function heldOutFiles(n: number, fraction: number, seed: number): Uint8Array {
  const held = new Uint8Array(n);
  if (n < 2 || fraction === 0) return held;
  const count = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const order = permutation(n, mixSeed(seed, kSplitSalt));
  for (let i = 0; i < count; i++) held[order[i]] = 1;
  return held;
}

/** The char vocabulary: every code point of every source, sorted. */
function charVocabulary(sources: readonly Source[], chunkBytes: number, progress: (bytes: number) => void): string[] {
  const seen = new Uint8Array(0x110000);
  for (const s of sources) {
    for (const text of textPieces(s.path, s.name, { chunkBytes, boundary: 'char', onBytes: progress })) {
      for (let i = 0; i < text.length; i++) {
        const cp = text.codePointAt(i)!;
        seen[cp] = 1;
        if (cp >= 0x10000) i++;
      }
    }
  }
  const vocab: string[] = [];
  for (let cp = 0; cp < seen.length; cp++) if (seen[cp]) vocab.push(String.fromCodePoint(cp));
  return vocab;
}

async function spoolStdin(stdin: Readable, path: string): Promise<void> {
  await pipeline(stdin, createWriteStream(path, { flags: 'wx' }));
}

export async function prepare(options: PrepareOptions): Promise<PrepareResult> {
  const o = checkOptions(options);
  checkOutDir(o.out);
  const made = !existsSync(o.out);
  const temps: string[] = [];
  const temp = (name: string): string => {
    const path = join(o.out, `.${name}.${process.pid}.tmp`);
    temps.push(path);
    return path;
  };
  let pool: WorkerPool | null = null;
  try {
    let stdinPath: string | undefined;
    if (o.inputs.includes('-')) {
      // Checked before anything is read from the pipe: a missing input fails at once.
      for (const input of o.inputs) if (input !== '-' && !existsSync(input)) throw new PrepareError(`${input}: no such file or directory`);
      mkdirSync(o.out, { recursive: true });
      stdinPath = temp('stdin');
      await spoolStdin(options.stdin ?? process.stdin, stdinPath);
    }
    let sources: Source[];
    try {
      sources = listSources(o.inputs, o.glob, stdinPath);
    } catch (err) {
      throw new PrepareError((err as Error).message);
    }
    if (sources.length === 0) throw new PrepareError(`empty corpus: no file in ${o.inputs.join(', ')} matches ${o.glob}`);
    mkdirSync(o.out, { recursive: true });
    const totalBytes = sources.reduce((a, s) => a + s.bytes, 0);
    const split = sources.length > 1 ? 'files' : 'tail';
    const held = heldOutFiles(sources.length, o.evalFraction, o.seed);

    let done = 0;
    const progress = (phase: PrepareProgress['phase']) => (bytes: number) => {
      done += bytes;
      options.onProgress?.({ phase, bytes: done, totalBytes });
    };
    let spec: TokenizerSpec;
    let vocab: string[] | undefined;
    try {
      if (o.tokenizer === 'char') {
        vocab = charVocabulary(sources, o.chunkBytes, progress('vocabulary'));
        if (vocab.length === 0) throw new PrepareError(`empty corpus: the ${sources.length === 1 ? 'source holds' : `${sources.length} sources hold`} no text`);
        if (vocab.length > kMaxVocabSize) throw new PrepareError(`the corpus has ${vocab.length} distinct characters; token ids are uint16, so a char vocabulary holds at most ${kMaxVocabSize} (use --tokenizer gpt2)`);
        spec = { name: 'char', vocab: vocab.join('') };
      } else spec = { name: 'gpt2' };

      // Threads pay for themselves only when there are several pieces to share out.
      const wanted = o.threads === 0 ? Math.min(availableParallelism(), Math.max(1, Math.floor(totalBytes / kBytesPerDefaultThread))) : o.threads;
      const threads = totalBytes > 2 * o.chunkBytes ? wanted : 1;
      if (threads === 1 && spec.name === 'gpt2') gpt2Tokenizer(); // loaded here, not on the first piece: a failure says so before any temp file
      if (threads > 1) pool = createPool({ threads });
      const tokenize = tokenizer(spec, pool);
      const trainPath = temp(kPreparedFiles.train);
      const valPath = temp(kPreparedFiles.val);
      const fds = { train: openSync(trainPath, 'w+'), val: openSync(valPath, 'w') }; // train is read back for a tail split
      const written = { train: 0, val: 0 };
      const recorded: PreparedMeta['sources'] = [];
      let anyText = false;
      try {
        const inFlight: Array<{ ids: Promise<Uint16Array>; to: 'train' | 'val' }> = [];
        const drain = async (keep: number): Promise<void> => {
          while (inFlight.length > keep) {
            const { ids, to } = inFlight.shift()!;
            const out = await ids;
            writeSync(fds[to], new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
            written[to] += out.length;
          }
        };
        const boundary: PieceBoundary = spec.name === 'gpt2' ? 'word' : 'char';
        done = 0;
        const onBytes = progress('tokens');
        for (let i = 0; i < sources.length; i++) {
          const s = sources[i];
          const to = held[i] ? 'val' : 'train';
          const hash = createHash('sha256');
          let hasText = false;
          for (const text of textPieces(s.path, s.name, { chunkBytes: o.chunkBytes, boundary, hash, onBytes })) {
            hasText = true;
            const ids = tokenize(text);
            ids.catch(() => undefined); // awaited in order by drain(); an early failure must not go unhandled
            inFlight.push({ ids, to });
            await drain(threads * kInFlightPerThread);
          }
          anyText ||= hasText;
          // A document ends with <|endoftext|> (an empty file is no document).
          if (spec.name === 'gpt2' && hasText) inFlight.push({ ids: Promise.resolve(Uint16Array.of(kGpt2EndOfText)), to });
          recorded.push({ path: s.name, bytes: s.bytes, sha256: hash.digest('hex'), split: to });
        }
        await drain(0);
        if (!anyText) throw new PrepareError(`empty corpus: the ${sources.length === 1 ? 'source holds' : `${sources.length} sources hold`} no text`);
        if (split === 'tail' && o.evalFraction > 0) moveTail(fds, written, o.evalFraction);
      } finally {
        closeSync(fds.train);
        closeSync(fds.val);
      }
      if (written.train === 0) {
        throw new PrepareError(written.val === 0 ? 'empty corpus: no tokens' : `the training split has no tokens: every file with text was held out (${written.val} held-out tokens); lower --eval-fraction or add files`);
      }
      const meta: PreparedMeta = {
        format: kPrepareFormat,
        tokenizer: spec.name,
        vocabSize: vocab?.length ?? kGpt2VocabSize,
        ...(vocab ? { vocab } : {}),
        tokens: written,
        files: { train: recorded.filter((r) => r.split === 'train').length, val: recorded.filter((r) => r.split === 'val').length },
        split,
        evalFraction: o.evalFraction,
        seed: o.seed,
        separator: spec.name === 'gpt2' ? '<|endoftext|>' : null,
        sources: recorded,
      };
      const metaPath = temp(kPreparedFiles.meta);
      writeFileSynced(metaPath, `${JSON.stringify(meta, null, 1)}\n`);
      for (const f of [trainPath, valPath]) fsyncFile(f);
      renameSync(trainPath, join(o.out, kPreparedFiles.train));
      renameSync(valPath, join(o.out, kPreparedFiles.val));
      renameSync(metaPath, join(o.out, kPreparedFiles.meta)); // last: a directory with this meta.json is complete
      if (stdinPath !== undefined) rmSync(stdinPath, { force: true });
      return { out: o.out, meta, threads };
    } catch (err) {
      if (err instanceof PrepareError) throw err;
      throw new PrepareError((err as Error).message);
    }
  } catch (err) {
    for (const t of temps) rmSync(t, { force: true });
    if (made && existsSync(o.out) && readdirSync(o.out).length === 0) rmdirSync(o.out);
    throw err;
  } finally {
    await pool?.close();
  }
}

/** A function from text to its ids: on this thread, or as a pool task. */
function tokenizer(spec: TokenizerSpec, pool: WorkerPool | null): (text: string) => Promise<Uint16Array> {
  if (pool === null) return (text) => Promise.resolve(tokenizePiece(spec, text));
  const module = new URL('./tokenize-piece.js', import.meta.url).href;
  return (text) => pool.run<Uint16Array>({ kind: 'for', module, start: 0, end: 0, part: 0, buffers: {}, args: { spec, text } });
}

/** One source, split by a tail fraction: its last round(N · f) tokens (at least 1) go from train to val. */
function moveTail(fds: { train: number; val: number }, written: { train: number; val: number }, fraction: number): void {
  const n = written.train;
  const tail = Math.max(1, Math.round(n * fraction));
  if (tail >= n) throw new PrepareError(`the corpus has ${n} token${n === 1 ? '' : 's'}: too few to hold out ${fraction} of them and train on the rest`);
  const piece = Buffer.allocUnsafe(1 << 24);
  for (let at = (n - tail) * 2; at < n * 2; ) {
    const got = readSync(fds.train, piece, 0, Math.min(piece.length, n * 2 - at), at);
    writeSync(fds.val, piece, 0, got);
    at += got;
  }
  ftruncateSync(fds.train, (n - tail) * 2);
  written.train = n - tail;
  written.val = tail;
}

function writeFileSynced(path: string, text: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

