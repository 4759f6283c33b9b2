// Text from a GPT, token by token: each new token is drawn from softmax(logits / temperature) at the last
// position of the (at most contextLength) latest tokens, over the topK most likely when topK is given
// (nanoGPT's sample.py). The prompt is encoded and the result decoded with the data's tokenizer (char or
// GPT-2's). There is no key/value cache: each token costs one forward pass over the window, which is simple
// and exact but slow for long samples. The draws use a seeded mulberry32 stream per sequence in float64, so
// a seed gives the same text on every run, whichever engine computes the logits and however many sequences
// it takes at once.

import { mixSeed, mulberry32 } from './random.js';
import type { LayersModel, Tf } from './model-module.js';
import type * as TF from '@tensorflow/tfjs-core';
import { kGpt2EndOfText, type Tokenizer } from './tokenizer.js';

export const kDefaultSampleTokens = 200;

/** Logits [batch, V] of the last position of each of `batch` sequences of `tokens` ids (inputs: batch × tokens). */
export type LastLogits = (inputs: Int32Array, batch: number, tokens: number) => ArrayLike<number>;

/** The last-position logits of a tfjs GPT (the tfjs engine's). */
export function tfjsLastLogits(tf: Tf, model: LayersModel): LastLogits {
  return (inputs, batch, tokens) =>
    tf.tidy(() => {
      const logits = model.apply(tf.tensor2d(inputs, [batch, tokens], 'int32')) as TF.Tensor3D;
      const V = logits.shape[2];
      return tf.slice(logits, [0, tokens - 1, 0], [batch, 1, V]).dataSync();
    });
}

export interface SampleRequest {
  readonly lastLogits: LastLogits;
  /** Sequences one call of lastLogits takes at most (default: all at once). */
  readonly maxBatch?: number;
  readonly count: number;
  readonly seed: number;
  readonly tokenizer: Tokenizer;
  readonly contextLength: number;
  /** Text to continue. Default: the start of a document (left out of the result), see startTokens. */
  readonly prompt?: string;
  readonly tokens?: number;
  readonly temperature?: number;
  /** Draw from the k most likely tokens only. Default: all of them. */
  readonly topK?: number;
}

type Checked = Pick<SampleRequest, 'count' | 'prompt' | 'tokens' | 'temperature' | 'topK' | 'tokenizer'>;

/** Check a request before any work (a bad prompt is found on the calling thread, not in a worker). */
export function checkSampleRequest(r: Checked): void {
  checked(r);
}

/**
 * Where a sample starts without a prompt: a new document. GPT-2's ids: <|endoftext|>, which `prepare`
 * writes after every document (as nanoGPT's openwebtext does); characters: a newline (nanoGPT's sample.py
 * starts at "\n"; in the SOTU stream a newline is where an address begins).
 */
function startTokens(tokenizer: Tokenizer): number[] {
  if (tokenizer.name === 'gpt2') return [kGpt2EndOfText];
  if (!tokenizer.vocab!.includes('\n')) throw new RangeError(`gpt: no prompt was given, and the vocabulary of ${tokenizer.vocabSize} characters has no newline to start a document with: give a prompt`);
  return tokenizer.encode('\n');
}

/** Check the request; one-line errors name the field and the value. */
function checked(r: Checked): { start: number[]; tokens: number; temperature: number; topK: number } {
  const tokens = r.tokens ?? kDefaultSampleTokens;
  const temperature = r.temperature ?? 1;
  const topK = r.topK ?? r.tokenizer.vocabSize;
  if (!Number.isInteger(tokens) || tokens < 1) throw new RangeError(`gpt: sample tokens must be a positive integer, got ${tokens}`);
  if (!Number.isFinite(temperature) || temperature < 0) throw new RangeError(`gpt: sample temperature must be a finite number ≥ 0, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`gpt: sample topK must be a positive integer, got ${topK}`);
  if (!Number.isInteger(r.count) || r.count < 0) throw new RangeError(`gpt: sample count must be a non-negative integer, got ${r.count}`);
  if (r.prompt === '') throw new RangeError('gpt: the prompt is empty (give at least one character, or no prompt to start a new document)');
  if (r.prompt === undefined) return { start: startTokens(r.tokenizer), tokens, temperature, topK };
  try {
    return { start: r.tokenizer.encode(r.prompt), tokens, temperature, topK };
  } catch (err) {
    throw new RangeError(`gpt: the prompt: ${(err as Error).message}`);
  }
}

/**
 * The smallest logit that is among the k largest of logits[from, from + size) (ties at it included, as
 * nanoGPT's `logits[logits < v[:, [-1]]] = -inf` keeps them). `sorted` is scratch of `size` floats.
 */
export function topKThreshold(logits: ArrayLike<number>, from: number, size: number, k: number, sorted: Float64Array): number {
  if (k >= size) return -Infinity;
  for (let i = 0; i < size; i++) sorted[i] = logits[from + i];
  sorted.sort();
  return sorted[size - k];
}

/**
 * Index drawn from softmax(logits/temperature) over the logits ≥ `threshold` (topKThreshold; −∞: all);
 * temperature 0: the first largest logit.
 */
export function drawToken(logits: ArrayLike<number>, from: number, size: number, temperature: number, u: number, threshold = -Infinity): number {
  let best = from;
  for (let i = from + 1; i < from + size; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best - from;
  let total = 0;
  const p = new Float64Array(size);
  for (let i = 0; i < size; i++) total += p[i] = logits[from + i] >= threshold ? Math.exp((logits[from + i] - logits[best]) / temperature) : 0;
  let target = u * total;
  let last = best - from;
  for (let i = 0; i < size; i++) {
    if (p[i] === 0) continue;
    last = i;
    target -= p[i];
    if (target < 0) return i;
  }
  return last; // rounding left a sliver of `target`: the last token that could be drawn
}

export function sampleTokens(r: SampleRequest): string[] {
  const { start, tokens, temperature, topK } = checked(r);
  const { count, tokenizer, contextLength } = r;
  if (count === 0) return [];
  const keep = r.prompt === undefined ? start.length : 0;
  const V = tokenizer.vocabSize;
  const sorted = topK < V && temperature > 0 ? new Float64Array(V) : null;
  const chunk = Math.max(1, Math.min(count, r.maxBatch ?? count));
  const out: string[] = [];
  for (let first = 0; first < count; first += chunk) {
    const n = Math.min(chunk, count - first);
    const seqs = Array.from({ length: n }, () => [...start]);
    const rands = Array.from({ length: n }, (_, i) => mulberry32(mixSeed(mixSeed(r.seed, 0x5a3b1e), first + i)));
    for (let t = 0; t < tokens; t++) {
      const T = Math.min(seqs[0].length, contextLength);
      const window = new Int32Array(n * T);
      seqs.forEach((s, i) => window.set(s.slice(s.length - T), i * T));
      const last = r.lastLogits(window, n, T);
      seqs.forEach((s, i) => {
        const threshold = sorted === null ? -Infinity : topKThreshold(last, i * V, V, topK, sorted);
        s.push(drawToken(last, i * V, V, temperature, rands[i](), threshold));
      });
    }
    for (const s of seqs) out.push(tokenizer.decode(s.slice(keep)));
  }
  return out;
}
