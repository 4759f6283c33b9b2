// The layers' checks, made once when they push their phases (src/nn/checks.ts): each bad argument is one line
// naming the layer, the argument and its value, and nothing is pushed.

import { expect } from 'chai';
import { crossEntropyForwardBackward } from '../src/nn/cross-entropy.js';
import { embeddingBackward, encoderForward } from '../src/nn/embedding.js';
import { layerNormForward } from '../src/nn/layer-norm.js';
import { linearBackward, linearForward } from '../src/nn/linear.js';
import { geluForward } from '../src/nn/activations.js';
import { addInto } from '../src/nn/residual.js';
import { Program } from '../src/nn/program.js';
import { Arena } from './nn-arena.js';

describe('nn layers: bad arguments', () => {
  const a = new Arena(4096);
  const k = a.kernels;
  const end = a.memory.buffer.byteLength;
  const ok = 1 << 16;
  const cases: [string, (p: Program) => void, string][] = [
    ['rows 0', (p) => linearForward(p, k, ok, ok, ok, null, 0, 4, 4), 'linearForward: rows must be a positive integer, got 0'],
    ['cin 2.5', (p) => linearForward(p, k, ok, ok, ok, null, 1, 2.5, 4), 'linearForward: cin must be a positive integer, got 2.5'],
    ['cout NaN', (p) => linearBackward(p, k, null, ok, null, ok, ok, ok, 1, 4, Number.NaN), 'linearBackward: cout must be a positive integer, got NaN'],
    ['misaligned weight', (p) => linearForward(p, k, ok, ok, ok + 2, null, 1, 4, 4), 'linearForward: weight must be a 4-byte aligned byte offset, got 65538'],
    ['negative out', (p) => geluForward(p, k, -4, ok, 8), 'geluForward: out must be a 4-byte aligned byte offset, got -4'],
    ['bias past the memory', (p) => linearForward(p, k, ok, ok, ok, end - 8, 1, 4, 4), `linearForward: bias (4 floats at byte ${end - 8}) ends past the memory (${end} bytes)`],
    ['dinp past the memory', (p) => linearBackward(p, k, end, ok, null, ok, ok, ok, 1, 4, 4), `linearBackward: dinp (4 floats at byte ${end}) ends past the memory (${end} bytes)`],
    ['n 0', (p) => addInto(p, k, ok, ok, 0), 'addInto: n must be a positive integer, got 0'],
    ['eps −1', (p) => layerNormForward(p, k, ok, ok, ok, ok, ok, ok, 2, 4, -1), 'layerNormForward: eps must be ≥ 0, got -1'],
    ['eps NaN', (p) => layerNormForward(p, k, ok, ok, ok, ok, ok, ok, 2, 4, Number.NaN), 'layerNormForward: eps must be finite, got NaN'],
    ['T 0', (p) => encoderForward(p, k, ok, ok, ok, ok, 2, 0, 4), 'encoderForward: T must be a positive integer, got 0'],
    ['V 0', (p) => embeddingBackward(p, k, ok, ok, ok, 3, 4, 0), 'embeddingBackward: V must be a positive integer, got 0'],
    ['scale ∞', (p) => crossEntropyForwardBackward(p, k, ok, ok, ok, 2, 5, Infinity), 'crossEntropyForwardBackward: scale must be finite, got Infinity'],
    ['logits past the memory', (p) => crossEntropyForwardBackward(p, k, ok, end - 16, ok, 2, 5, 0.5), `crossEntropyForwardBackward: logits (10 floats at byte ${end - 16}) ends past the memory (${end} bytes)`],
  ];
  for (const [what, build, message] of cases) {
    it(`${what}: "${message}", nothing pushed`, () => {
      const p = new Program();
      expect(() => build(p)).to.throw(RangeError, message);
      expect(p.phases).to.have.length(0);
    });
  }
});
