// parallelFor: a user's kernel over ranges of shared buffers, on a pool of its own or the optimizer's.
import { expect } from 'chai';
import { createOptimizer, createPool, parallelFor } from '../src/index.js';

const saxpy = new URL('./loops/saxpy.js', import.meta.url);

function buffers(n: number) {
  const x = new SharedArrayBuffer(n * 4);
  const y = new SharedArrayBuffer(n * 4);
  new Float32Array(x).forEach((_, i, a) => (a[i] = i % 13));
  new Float32Array(y).fill(-1); // poison: every element must be written exactly once
  return { x, y };
}

describe('parallelFor', () => {
  for (const threads of [1, 2, 3]) {
    it(`covers every index exactly once, ranges on 16-element boundaries (${threads} threads)`, async () => {
      const n = 100003;
      const b = buffers(n);
      const pool = createPool({ threads });
      try {
        const sums = await parallelFor<number>({ module: saxpy, range: n, buffers: b, args: { a: 2 }, pool, tasks: threads * 2 });
        expect(sums).to.have.length(threads * 2);
        const y = new Float32Array(b.y);
        for (let i = 0; i < n; i++) if (y[i] !== 2 * (i % 13) - 1) throw new Error(`y[${i}] = ${y[i]}`);
        expect(sums.reduce((s, v) => s + v, 0)).to.be.closeTo(y.reduce((s, v) => s + v, 0), 1e-6 * n);
      } finally {
        await pool.close();
      }
    });
  }

  it('a sub-range [start, end) leaves the rest alone; a temporary pool is closed after', async () => {
    const b = buffers(1000);
    await parallelFor({ module: saxpy.href, range: [100, 900], buffers: b, args: { a: 1 }, threads: 2 });
    const y = new Float32Array(b.y);
    expect(y[99]).to.equal(-1);
    expect(y[100]).to.equal((100 % 13) - 1);
    expect(y[899]).to.equal((899 % 13) - 1);
    expect(y[900]).to.equal(-1);
  });

  it("runs on an optimizer's pool", async () => {
    const opt = await createOptimizer({ params: { w: new Float32Array(4) }, threads: 2 });
    try {
      const b = buffers(64);
      await parallelFor({ module: saxpy, range: 64, buffers: b, args: { a: 3 }, pool: opt.pool });
      expect(new Float32Array(b.y)[5]).to.equal(14);
    } finally {
      await opt.close();
    }
  });

  it('a thread that exits is reported with what it was running, and the pool replaces it', async () => {
    const pool = createPool({ threads: 2 });
    try {
      const exits = new URL('./loops/exits.js', import.meta.url);
      let error: Error | undefined;
      try {
        await parallelFor({ module: exits, range: 64, pool });
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message).to.match(/^a pool thread died while running parallelFor file:.*exits\.js \[0, 32\): worker exited with code: 3$/);
      expect(await parallelFor({ module: exits, range: [16, 64], pool })).to.deep.equal([1, 1]);
    } finally {
      await pool.close();
    }
  });

  it('errors name the thread, module and range; bad options are refused', async () => {
    const pool = createPool({ threads: 2 });
    try {
      let error: Error | undefined;
      try {
        await parallelFor({ module: new URL('./loops/throws.js', import.meta.url), range: 64, pool });
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message).to.match(/^worker thread \d+ \(parallelFor file:.*throws\.js \[(0|32), (32|64)\)\): bad element at (0|32)$/);
      let bad: Error | undefined;
      try {
        await parallelFor({ module: saxpy, range: [5, 2], pool });
      } catch (err) {
        bad = err as Error;
      }
      expect(bad?.message).to.match(/options\.range must be n >= 0 or \[start, end\]/);
      try {
        await parallelFor({ module: saxpy, range: 4, pool, buffers: { x: new ArrayBuffer(4) as unknown as SharedArrayBuffer } });
        bad = undefined;
      } catch (err) {
        bad = err as Error;
      }
      expect(bad?.message).to.match(/buffers\.x must be a SharedArrayBuffer/);
    } finally {
      await pool.close();
    }
  });
});
