// Bitwise identity: the same inputs give the same bits for any thread count, any shard count, inline or on
// the pool, with global-norm clipping on (its norm is a float64 sum over fixed chunks in a fixed order).

import { expect } from 'chai';
import { createOptimizer, type ConventionName } from '../src/index.js';
import { freshSeed, randomArray, rng } from './reference.js';

const sizes = [40000, 17, 33333, 5];
const seed = freshSeed();

async function run(convention: ConventionName, threads: number, maxShardParams: number | undefined, dispatch: 'pool' | 'inline') {
  const next = rng(seed);
  const opt = await createOptimizer({
    params: sizes.map((n, i) => [`t${i}`, randomArray(n, next)] as const),
    threads,
    dispatch,
    convention,
    maxShardParams,
    clipGlobalNorm: 20,
    amsgrad: convention === 'keras',
    gradSlots: 2,
  });
  const norms: number[] = [];
  for (let step = 0; step < 6; step++) {
    for (let r = 0; r < 2; r++) opt.setGrads(Object.fromEntries(sizes.map((n, i) => [`t${i}`, randomArray(n, next, 1 + step)])), r);
    norms.push((await opt.step()).gradNorm);
  }
  const bits = (region: 'params' | 'm' | 'v') =>
    sizes.map((_, i) => {
      const view = region === 'params' ? opt.params[`t${i}`] : opt.state[region][`t${i}`];
      return new Uint32Array(view.slice().buffer);
    });
  const out = { params: bits('params'), m: bits('m'), v: bits('v'), norms, clipped: norms.some((n) => n > 20) };
  await opt.close();
  return out;
}

describe(`bitwise identity across threads, shards and dispatch (seed ${seed})`, function () {
  this.timeout(60000);
  for (const convention of ['pytorch', 'keras', 'l2'] as ConventionName[]) {
    it(`${convention}: inline 1 thread == pool 1, 2, 3 threads == other shard counts`, async () => {
      const base = await run(convention, 1, undefined, 'inline');
      expect(base.clipped, 'the norm clip must be active for this test to mean anything').to.equal(true);
      for (const [threads, shards, dispatch] of [
        [1, undefined, 'pool'],
        [2, undefined, 'pool'],
        [3, undefined, 'pool'],
        [3, 4096, 'pool'],
        [2, 1024, 'inline'],
      ] as const) {
        const other = await run(convention, threads, shards, dispatch);
        const label = `${threads} threads, maxShardParams ${shards}, ${dispatch}`;
        expect(other.norms, label).to.deep.equal(base.norms);
        for (const region of ['params', 'm', 'v'] as const) {
          other[region].forEach((b, i) => expect(Buffer.from(b.buffer).equals(Buffer.from(base[region][i].buffer)), `${label}: ${region} of t${i}`).to.equal(true));
        }
      }
    });
  }
});
