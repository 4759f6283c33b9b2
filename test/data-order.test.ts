// The data order: each epoch a seeded permutation of the examples, computed per index (EpochPermutation, a
// cycle-walked Feistel network), never tabled. It must be a bijection for every size, differ between seeds
// and epochs, and cut batches the same way on every replica.
import { expect } from 'chai';
import { DataOrder, EpochPermutation } from '../src/train/data-order.js';
import { freshSeed } from './reference.js';

const seed = freshSeed();

describe(`data order (seed ${seed})`, () => {
  it('EpochPermutation is a bijection of [0, n) for every n up to 300 and at sizes around powers of 4', () => {
    const sizes = [...Array.from({ length: 301 }, (_, n) => n), 1023, 1024, 1025, 4095, 4097, 65536, 65537, 100003];
    for (const n of sizes) {
      const p = new EpochPermutation(n, seed + n);
      const seen = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const j = p.at(i);
        expect(Number.isInteger(j) && j >= 0 && j < n, `n ${n}: ${i} → ${j}`).to.equal(true);
        seen[j]++;
      }
      expect(seen.every((c) => c === 1), `n ${n}: every index exactly once`).to.equal(true);
    }
  });

  it('a large epoch costs no table: indices of a 2^31-example epoch are in range and distinct', () => {
    const n = 2 ** 31 + 12345;
    const p = new EpochPermutation(n, seed);
    const got = new Set<number>();
    for (let i = 0; i < 2000; i++) got.add(p.at(n - 1 - i * 1_000_003));
    expect(got.size).to.equal(2000);
    for (const j of got) expect(j >= 0 && j < n).to.equal(true);
  });

  it('depends on the seed, and shuffles (few fixed points, no identity)', () => {
    const n = 10000;
    const a = new EpochPermutation(n, seed);
    const b = new EpochPermutation(n, seed + 1);
    let same = 0;
    let fixed = 0;
    for (let i = 0; i < n; i++) {
      if (a.at(i) === b.at(i)) same++;
      if (a.at(i) === i) fixed++;
    }
    expect(same).to.be.below(50);
    expect(fixed).to.be.below(50);
  });

  it('refuses more than 2^32 indices', () => {
    expect(() => new EpochPermutation(2 ** 32 + 1, 1)).to.throw('a permutation of 4294967297 indices is not supported (at most 2^32)');
  });

  it('batches: each epoch visits every example once; a batch may straddle epochs; replica slices tile the batch', () => {
    const count = 37;
    const order = new DataOrder(count, 8, seed);
    const firstTwoEpochs: number[] = [];
    for (let step = 0; step < (2 * count) / 8; step++) firstTwoEpochs.push(...order.slice(step, 0, 8));
    const epoch0 = firstTwoEpochs.slice(0, count).sort((x, y) => x - y);
    expect(epoch0).to.deep.equal(Array.from({ length: count }, (_, i) => i));
    expect(firstTwoEpochs.slice(count, 2 * count)).to.not.deep.equal(firstTwoEpochs.slice(0, count));
    const whole = Array.from(order.slice(5, 0, 8));
    expect([...order.slice(5, 0, 3), ...order.slice(5, 3, 5)]).to.deep.equal(whole);
  });
});
