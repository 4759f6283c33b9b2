// Text from a GPT, character by character: each new character is drawn from softmax(logits / temperature)
// at the last position of the (at most contextLength) latest characters. There is no key/value cache: each
// character costs one forward pass over the window, which is simple and exact but slow for long samples.
// The draws use a seeded mulberry32 stream per sequence in float64, so a seed gives the same text on every
// run, whichever engine computes the logits and however many sequences it takes at once.

import { mixSeed, mulberry32 } from './random.js';
import type { LayersModel, Tf } from './model-module.js';
import type * as TF from '@tensorflow/tfjs-core';
import { decode, encode, kAddressEnd } from './sotu.js';

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
  readonly vocab: readonly string[];
  readonly contextLength: number;
  /** Text to continue. Default: a newline, the start of an address (and then it is left out of the result). */
  readonly prompt?: string;
  readonly tokens?: number;
  readonly temperature?: number;
}

/** Check a request before any work (a bad prompt is found on the calling thread, not in a worker). */
export function checkSampleRequest(r: Pick<SampleRequest, 'count' | 'prompt' | 'tokens' | 'temperature' | 'vocab'>): void {
  const { prompt } = checked(r);
  encode(prompt, r.vocab, 'the prompt');
}

/** Check the request; one-line errors name the field and the value. */
function checked(r: Pick<SampleRequest, 'count' | 'prompt' | 'tokens' | 'temperature'>): { prompt: string; tokens: number; temperature: number } {
  const tokens = r.tokens ?? kDefaultSampleTokens;
  const temperature = r.temperature ?? 1;
  if (!Number.isInteger(tokens) || tokens < 1) throw new RangeError(`gpt: sample tokens must be a positive integer, got ${tokens}`);
  if (!Number.isFinite(temperature) || temperature < 0) throw new RangeError(`gpt: sample temperature must be a finite number ≥ 0, got ${temperature}`);
  if (!Number.isInteger(r.count) || r.count < 0) throw new RangeError(`gpt: sample count must be a non-negative integer, got ${r.count}`);
  if (r.prompt === '') throw new RangeError('gpt: the prompt is empty (give at least one character, or no prompt to start a new address)');
  return { prompt: r.prompt ?? kAddressEnd, tokens, temperature };
}

/** Index drawn from softmax(logits/temperature) (temperature 0: the first largest logit). */
export function drawToken(logits: ArrayLike<number>, from: number, size: number, temperature: number, u: number): number {
  let best = from;
  for (let i = from + 1; i < from + size; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best - from;
  let total = 0;
  const p = new Float64Array(size);
  for (let i = 0; i < size; i++) total += p[i] = Math.exp((logits[from + i] - logits[best]) / temperature);
  let target = u * total;
  for (let i = 0; i < size - 1; i++) {
    target -= p[i];
    if (target < 0) return i;
  }
  return size - 1;
}

export function sampleTokens(r: SampleRequest): string[] {
  const { prompt, tokens, temperature } = checked(r);
  const { count, vocab, contextLength } = r;
  if (count === 0) return [];
  const start = Array.from(encode(prompt, vocab, 'the prompt'));
  const keep = r.prompt === undefined ? start.length : 0;
  const V = vocab.length;
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
      seqs.forEach((s, i) => s.push(drawToken(last, i * V, V, temperature, rands[i]())));
    }
    for (const s of seqs) out.push(decode(s.slice(keep), vocab));
  }
  return out;
}
