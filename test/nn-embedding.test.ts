// Embeddings (src/nn/embedding.ts): the GPT's encoder (token row + position row) and char-lm's table lookup.
// Forwards are exact (a copy, or one float32 addition per element); the backwards' scatters and the position
// gradient against float64 within γ(uses + 1)·Σ|terms| (test/nn-reference.ts), dwte written (over a poisoned
// table: every row zeroed) or accumulated, and against central differences of the float64 forward; repeated
// ids; 1, 2 and 3 members give the same bits. Ids out of range: what each function does, tested below.

import { expect } from 'chai';
import { embeddingBackward, embeddingForward, encoderBackward, encoderForward } from '../src/nn/embedding.js';
import { Program, runSerial } from '../src/nn/program.js';
import { Arena, bits, sameForEveryTeam } from './nn-arena.js';
import { centralDifference, expectWithin, refColumnSums, refScatter } from './nn-reference.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();

function ids(n: number, V: number, next: () => number): Int32Array {
  const out = Int32Array.from({ length: n }, () => Math.floor(next() * V));
  if (n > 2) out[n - 1] = out[0]; // a repeated id whatever V is
  return out;
}

/** d/d table[v, c] of Σ dout·out, by differences of out = table[ids] (+ anything independent of the table). */
function scatterDifferences(label: string, got: Float32Array, bound: Float64Array, table: Float32Array, idsOf: Int32Array, dout: Float32Array, E: number, V: number, next: () => number): void {
  const t = Float64Array.from(table);
  for (const e of new Set([0, V * E - 1, ...Array.from({ length: 16 }, () => Math.floor(next() * V * E))])) {
    const c = e % E;
    const column = (x: Float64Array) => Array.from(idsOf, (id) => x[id * E + c]);
    const diff = centralDifference(column, t, e, Array.from(idsOf, (_, r) => dout[r * E + c]), 1e-3, 1);
    if (!(Math.abs(got[e] - diff.value) <= bound[e] + diff.error)) expect.fail(`${label}[${e}]: kernel ${got[e]}, differences ${diff.value} ± ${diff.error}`);
  }
}

describe(`nn embeddings (seed ${seed})`, () => {
  const encoderShapes: [number, number, number, number][] = [[1, 1, 1, 1], [2, 5, 7, 11], [3, 37, 64, 300], [1, 130, 200, 3001], [4, 3, 200, 2]];
  for (const [B, T, C, V] of encoderShapes) {
    it(`encoder B = ${B}, T = ${T}, C = ${C}, V = ${V}: forward exact, backward within float64 bounds (dwte = and +=), differences, 1-3 members the same bits`, () => {
      const next = rng(seed ^ (B * 7919 + T * 104729 + C * 31 + V));
      const n = B * T;
      const tokens = ids(n, V, next);
      const wteV = randomArray(V * C, next);
      const wpeV = randomArray(T * C, next);
      const doutV = randomArray(n * C, next);
      const prior = randomArray(V * C, next);
      const [out, dwte, dwpe, dwteAcc] = sameForEveryTeam((members) => {
        const a = new Arena(3 * V * C + 2 * T * C + 2 * n * C + n);
        const tok = a.allocInts('tokens', tokens);
        const wte = a.alloc('wte', V * C, wteV);
        const wpe = a.alloc('wpe', T * C, wpeV);
        const o = a.alloc('out', n * C);
        const dout = a.alloc('dout', n * C, doutV);
        const dw = a.alloc('dwte', V * C);
        const dp = a.alloc('dwpe', T * C);
        const acc = a.alloc('dwte accumulated', V * C, prior);
        const p = new Program();
        encoderForward(p, a.kernels, o, tok, wte, wpe, B, T, C);
        encoderBackward(p, a.kernels, dw, dp, dout, tok, B, T, C, V, { accumulateWte: false });
        encoderBackward(p, a.kernels, acc, dp, dout, tok, B, T, C, V, { accumulateWte: true });
        a.snapshot();
        runSerial(p, members);
        a.written(o, dw, dp, acc);
        return [a.get(o, n * C), a.get(dw, V * C), a.get(dp, T * C), a.get(acc, V * C)];
      });
      const want = new Float32Array(n * C);
      for (let r = 0; r < n; r++) for (let c = 0; c < C; c++) want[r * C + c] = Math.fround(wteV[tokens[r] * C + c] + wpeV[(r % T) * C + c]);
      expect(bits(out), 'out = wte[token] + wpe[t]').to.equal(bits(want));
      const scatter = refScatter(doutV, tokens, n, C, V, null);
      expectWithin('dwte', dwte, scatter.want, scatter.bound);
      const accumulated = refScatter(doutV, tokens, n, C, V, prior);
      expectWithin('dwte +=', dwteAcc, accumulated.want, accumulated.bound);
      const pos = refColumnSums(doutV, B, T * C, T * C, null);
      expectWithin('dwpe', dwpe, pos.want, pos.bound);
      scatterDifferences('dwte', dwte, scatter.bound, wteV, tokens, doutV, C, V, next);
      // dwpe[t, c] by differences: wpe[t, c] reaches out[b, t, c] for every b
      const wpe = Float64Array.from(wpeV);
      for (const e of new Set([0, T * C - 1, Math.floor(next() * T * C)])) {
        const [t, c] = [Math.floor(e / C), e % C];
        const diff = centralDifference((x) => Array.from({ length: B }, () => x[e]), wpe, e, Array.from({ length: B }, (_, b) => doutV[(b * T + t) * C + c]), 1e-3, 1);
        if (!(Math.abs(dwpe[e] - diff.value) <= pos.bound[e] + diff.error)) expect.fail(`dwpe[${e}]: kernel ${dwpe[e]}, differences ${diff.value}`);
      }
    });
  }

  for (const [count, E, V] of [[1, 1, 1], [7, 7, 27], [130, 64, 3000], [37, 200, 5]] as const) {
    it(`char-lm table count = ${count}, E = ${E}, V = ${V}: forward exact, backward written over a poisoned table, differences, 1-3 members the same bits`, () => {
      const next = rng(seed ^ (count * 7919 + E * 104729 + V));
      const idv = ids(count, V, next);
      const tableV = randomArray(V * E, next);
      const doutV = randomArray(count * E, next);
      const [out, dtable] = sameForEveryTeam((members) => {
        const a = new Arena(2 * V * E + 2 * count * E + count);
        const id = a.allocInts('ids', idv);
        const table = a.alloc('table', V * E, tableV);
        const o = a.alloc('out', count * E);
        const dout = a.alloc('dout', count * E, doutV);
        const dt = a.alloc('dtable', V * E); // NaN: the backward must zero every row, used or not
        const p = new Program();
        embeddingForward(p, a.kernels, o, id, table, count, E);
        embeddingBackward(p, a.kernels, dt, dout, id, count, E, V);
        a.snapshot();
        runSerial(p, members);
        a.written(o, dt);
        return [a.get(o, count * E), a.get(dt, V * E)];
      });
      const want = new Float32Array(count * E);
      for (let r = 0; r < count; r++) want.set(tableV.subarray(idv[r] * E, (idv[r] + 1) * E), r * E);
      expect(bits(out), 'out = table[id]').to.equal(bits(want));
      const scatter = refScatter(doutV, idv, count, E, V, null);
      expectWithin('dtable', dtable, scatter.want, scatter.bound);
      scatterDifferences('dtable', dtable, scatter.bound, tableV, idv, doutV, E, V, next);
    });
  }

  describe('ids out of range', () => {
    const [B, T, C, V] = [2, 3, 5, 11];
    /** An arena with tokens whose position 4 holds `bad`, and the buffers of both encoder passes. */
    function setup(bad: number) {
      const a = new Arena(4 * V * C + 4 * B * T * C);
      const tokens = Int32Array.from({ length: B * T }, (_, i) => i % V);
      tokens[4] = bad;
      const tok = a.allocInts('tokens', tokens);
      const wte = a.alloc('wte', V * C, randomArray(V * C, rng(seed)));
      const wpe = a.alloc('wpe', T * C, randomArray(T * C, rng(seed + 1)));
      const out = a.alloc('out', B * T * C);
      const dout = a.alloc('dout', B * T * C, randomArray(B * T * C, rng(seed + 2)));
      const dwte = a.alloc('dwte', V * C);
      const dwpe = a.alloc('dwpe', T * C);
      return { a, tok, wte, wpe, out, dout, dwte, dwpe };
    }

    for (const members of [1, 3]) {
      it(`backwards (which know V): an id ≥ V or < 0 throws naming it and its position, and nothing is written (${members} members)`, () => {
        for (const bad of [V, -1]) {
          const s = setup(bad);
          const p = new Program();
          encoderBackward(p, s.a.kernels, s.dwte, s.dwpe, s.dout, s.tok, B, T, C, V, { accumulateWte: false });
          s.a.snapshot();
          expect(() => runSerial(p, members)).to.throw(`backward: id ${bad} at position 4 is outside [0, ${V})`);
          s.a.written();
          const q = new Program();
          embeddingBackward(q, s.a.kernels, s.dwte, s.dout, s.tok, B * T, C, V);
          expect(() => runSerial(q, members)).to.throw(`backward: id ${bad} at position 4 is outside [0, ${V})`);
          s.a.written();
        }
      });

      it(`forwards (not given V): an id that would read past the memory, or a negative one, throws, and nothing outside out is written (other members' rows may be); one just past V reads what follows the table into out (${members} members)`, () => {
        for (const bad of [-1, 2 ** 30]) {
          const s = setup(bad);
          const rows = Math.floor((s.a.memory.buffer.byteLength - s.wte) / (4 * C));
          for (const build of [
            (p: Program) => encoderForward(p, s.a.kernels, s.out, s.tok, s.wte, s.wpe, B, T, C),
            (p: Program) => embeddingForward(p, s.a.kernels, s.out, s.tok, s.wte, B * T, C),
          ]) {
            const p = new Program();
            build(p);
            s.a.snapshot();
            expect(() => runSerial(p, members)).to.throw(new RegExp(`^forward: (token )?id ${bad} at position 4 is outside \\[0, ${rows}\\), the table rows the memory holds \\(the forward is not given V\\)$`));
            s.a.written(s.out);
            if (members === 1) s.a.written(); // the whole split was one member's, which checks its ids before writing
          }
        }
        const s = setup(V);
        const p = new Program();
        encoderForward(p, s.a.kernels, s.out, s.tok, s.wte, s.wpe, B, T, C);
        s.a.snapshot();
        runSerial(p, members);
        s.a.written(s.out);
        // the refused step: the backward of the same ids
        const q = new Program();
        encoderBackward(q, s.a.kernels, s.dwte, s.dwpe, s.dout, s.tok, B, T, C, V, { accumulateWte: true });
        expect(() => runSerial(q, members)).to.throw(`id ${V} at position 4 is outside [0, ${V})`);
      });
    }
  });
});
