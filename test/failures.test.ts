// Non-finite gradients and worker failures: nothing half-written, errors with context, no thread left behind.
import { expect } from 'chai';
import { createOptimizer, NonFiniteGradientError } from '../src/index.js';

const sizes = { 'a/kernel': 30000, 'b/bias': 11, 'c/kernel': 20000 };
const initial = () => Object.fromEntries(Object.entries(sizes).map(([n, k]) => [n, Float32Array.from({ length: k }, (_, i) => Math.sin(i))]));
const snapshot = (opt: Awaited<ReturnType<typeof createOptimizer>>) =>
  Object.keys(sizes).map((n) => [opt.params[n].slice(), opt.state.m[n].slice(), opt.state.v[n].slice()]);

describe('non-finite gradients', () => {
  for (const threads of [1, 2, 3]) {
    it(`'throw' (default) names the first bad tensor and leaves params, m, v and the step untouched (${threads} threads)`, async () => {
      const opt = await createOptimizer({ params: initial(), threads, dispatch: 'pool', maxShardParams: 8192 });
      try {
        opt.grads['a/kernel'].fill(0.1);
        await opt.step();
        const before = snapshot(opt);
        opt.grads['c/kernel'].set([Number.POSITIVE_INFINITY], 19999);
        let error: unknown;
        try {
          await opt.step();
        } catch (err) {
          error = err;
        }
        expect(error).to.be.instanceOf(NonFiniteGradientError);
        expect((error as Error).message).to.match(/non-finite gradient in tensor "c\/kernel" \(element 19999 of slot 0 is Infinity\) at step 2; the step was not applied/);
        expect(snapshot(opt)).to.deep.equal(before);
        expect(opt.globalStep).to.equal(1);
        expect(opt.skippedSteps).to.equal(1);
        // Fix the gradient: training continues.
        opt.grads['c/kernel'].set([0], 19999);
        expect((await opt.step()).step).to.equal(2);
      } finally {
        await opt.close();
      }
    });
  }

  it("'skip' skips the whole step on every shard, counts it, and reports it", async () => {
    const opt = await createOptimizer({ params: initial(), threads: 2, dispatch: 'pool', onNonFinite: 'skip', gradSlots: 2, maxShardParams: 4096 });
    try {
      opt.gradSlot(0)['a/kernel'].fill(0.1);
      opt.gradSlot(1)['b/bias'].set([Number.NaN], 3);
      const before = snapshot(opt);
      const result = await opt.step();
      expect(result).to.include({ skipped: true, step: 0 });
      expect(snapshot(opt)).to.deep.equal(before);
      expect(opt.skippedSteps).to.equal(1);
      expect(opt.globalStep).to.equal(0);
    } finally {
      await opt.close();
    }
  });
});

describe('worker failures', () => {
  it('an error in a worker reaches step() with thread, step and part, and close() still ends every thread', async () => {
    const opt = await createOptimizer({ params: initial(), threads: 3, dispatch: 'pool', failAt: { phase: 'norm', part: 1 } });
    const before = snapshot(opt);
    let error: Error | undefined;
    try {
      await opt.step();
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/^worker thread \d+ \(step 1, part 1\/3\): injected failure \(failAt\)$/);
    // the norm phase writes nothing: parameters are intact
    expect(snapshot(opt)).to.deep.equal(before);
    const pool = opt.pool;
    await opt.close();
    expect(pool.closed).to.equal(true);
  });

  it('a failure in the update phase marks the optimizer unusable (params may mix two steps)', async () => {
    const opt = await createOptimizer({ params: initial(), threads: 2, dispatch: 'pool', failAt: { phase: 'update', part: 0 } });
    let error: Error | undefined;
    try {
      await opt.step();
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/step 1 failed in a worker after some shards were updated; restore from a checkpoint: worker thread \d+ \(step 1, part 0\/2\)/);
    let again: Error | undefined;
    try {
      await opt.step();
    } catch (err) {
      again = err as Error;
    }
    expect(again).to.equal(error);
    await opt.close();
  });
});
