// Our Add, Sub, Multiply and RealDiv on the wasm backend: every output is one IEEE float32 operation, so the
// bits must equal the cpu backend's (double arithmetic rounded once to float32 gives the same result for these
// four operations) and tfjs's own wasm kernels', for every broadcast we handle, special values included; the
// broadcasts we do not handle and other dtypes go to tfjs's kernels. SHARDTRAIN_SEED=… replays a run.

import { expect } from 'chai';
import { binaryLayout } from '../src/tfjs/binary-kernels.js';
import { kernelCalls, registerWasmKernels, restoreTfjsKernels } from '../src/tfjs/register.js';
import { initTf, tf } from '../src/tfjs/tf.js';
import { freshSeed, randomArray, rng } from './reference.js';

const seed = freshSeed();

describe('binaryLayout: the m×n view of a broadcast', () => {
  before(async () => void (await initTf('wasm')));
  const table: ReadonlyArray<[number[], number[], string]> = [
    [[512, 256], [512, 256], 'm 1 n 131072 a (131072, 1) b (131072, 1)'],
    [[512, 256], [], 'm 1 n 131072 a (131072, 1) b (0, 0)'],
    [[512, 256], [256], 'm 512 n 256 a (256, 1) b (0, 1)'],
    [[512, 256], [512, 1], 'm 512 n 256 a (256, 1) b (1, 0)'],
    [[1, 7], [5, 1], 'm 5 n 7 a (0, 1) b (1, 0)'],
    [[2, 3, 4], [3, 4], 'm 2 n 12 a (12, 1) b (0, 1)'],
    [[2, 3, 4], [2, 3, 1], 'm 6 n 4 a (4, 1) b (1, 0)'],
    [[2, 1, 4], [3, 1], 'none'],
    [[2, 3], [2, 1, 1], 'm 2 n 6 a (0, 1) b (1, 0)'],
    [[3, 1, 5], [1, 4, 1], 'none'],
  ];
  for (const [a, b, want] of table) {
    it(`[${a}] with [${b}] → ${want}`, () => {
      const out = tf.broadcast_util.assertAndGetBroadcastShape(a, b);
      const l = binaryLayout(a, b, out);
      expect(l === null ? 'none' : `m ${l.m} n ${l.n} a (${l.a.row}, ${l.a.col}) b (${l.b.row}, ${l.b.col})`).to.equal(want);
    });
  }
});

describe(`Add, Sub, Multiply, RealDiv on the wasm backend, seed ${seed}`, function () {
  this.timeout(60000);
  before(async () => {
    expect(await initTf('wasm')).to.equal('wasm');
    registerWasmKernels(tf);
  });
  after(() => registerWasmKernels(tf));

  const shapes: ReadonlyArray<[number[], number[]]> = [
    [[37, 13], [37, 13]], [[37, 13], []], [[], [37, 13]], [[37, 13], [13]], [[13], [37, 13]], [[37, 13], [37, 1]], [[37, 1], [37, 13]],
    [[1, 7], [5, 1]], [[2, 3, 5], [3, 5]], [[2, 3, 5], [2, 3, 1]], [[0, 4], [4]], [[1], [1]], [[2, 1, 4], [3, 1]], [[6], [1, 6]], [[2, 3], [2, 1, 1]], [[3, 1, 5], [1, 4, 1]],
  ];
  const specials = [NaN, Infinity, -Infinity, 0, -0, 1e-45, 3.4e38, -1];

  /** Values with special ones mixed in, so 0/0, ∞−∞, NaN, −0 and overflow all occur. */
  const values = (n: number, next: () => number): Float32Array => {
    const v = randomArray(n, next, 4);
    for (let i = 0; i < n; i++) if (next() < 0.2) v[i] = specials[Math.floor(next() * specials.length)];
    return v;
  };
  const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));

  for (const name of ['add', 'sub', 'mul', 'div'] as const) {
    for (const [sa, sb] of shapes) {
      it(`tf.${name}([${sa}], [${sb}]): the same bits as the cpu backend and tfjs's wasm kernel`, async () => {
        const next = rng(seed ^ (sa.length * 131 + sb.length * 7 + name.length));
        const a = values(sa.reduce((p, d) => p * d, 1), next);
        const b = values(sb.reduce((p, d) => p * d, 1), next);
        const run = () => tf.tidy(() => tf[name](tf.tensor(a, sa), tf.tensor(b, sb)).dataSync() as Float32Array);
        const kernel = { add: 'Add', sub: 'Sub', mul: 'Multiply', div: 'RealDiv' }[name];
        const count = () => kernelCalls().get(kernel) ?? { calls: 0, toTfjs: 0 };
        const before = count();
        const ours = run();
        const after = count();
        // Which code ran: ours, unless the broadcast is one binaryLayout has no m×n view for (then tfjs's, counted).
        const toTfjs = binaryLayout(sa, sb, tf.broadcast_util.assertAndGetBroadcastShape(sa, sb)) === null ? 1 : 0;
        expect([after.calls - before.calls, after.toTfjs - before.toTfjs], 'calls of ours, of them handed to tfjs').to.deep.equal([1, toTfjs]);
        if (sa.join() === sb.join()) expect(toTfjs, 'same shapes run on ours').to.equal(0);
        restoreTfjsKernels(tf);
        const theirs = run();
        registerWasmKernels(tf);
        await tf.setBackend('cpu');
        const cpu = run();
        await tf.setBackend('wasm');
        // NaN payloads may differ between implementations: compare NaN as NaN, everything else bit for bit.
        const canon = (x: Float32Array) => bits(x.map((v) => (Number.isNaN(v) ? NaN : v)));
        expect(canon(ours)).to.deep.equal(canon(cpu));
        expect(canon(ours)).to.deep.equal(canon(theirs));
      });
    }
  }

  it("int32 operands go to tfjs's kernels (integer results)", () => {
    const out = tf.tidy(() => Array.from(tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32')).dataSync()));
    expect(out).to.deep.equal([5, 7, 9]);
  });
});
