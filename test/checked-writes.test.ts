// Gradients checked as they are written (src/parallel/checked-writes.ts): the bound check of both kernels
// against a reference, and the optimizer's use of it: a step whose slots were all written and checked
// skips its non-finite scan and gives the same bits as one that scans; NaN/Inf is still never applied,
// however it got into a slot.
import { expect } from 'chai';
import { createOptimizer, NonFiniteGradientError, Trainer, type ShardedAdamW } from '../src/index.js';
import { computeLayout } from '../src/memory/layout.js';
import { allocateShards } from '../src/memory/shard-states.js';
import { jsKernels } from '../src/kernels/adamw-js.js';
import { wasmKernels } from '../src/kernels/adamw-wasm.js';
import { kCheckedBound } from '../src/parallel/checked-writes.js';
import { tinyConfig } from './fixtures/tiny-config.js';
import { freshSeed, randomArray, rng } from './reference.js';

const f32 = (x: number) => Math.fround(x);
/** The next float32 above the bound: must fail. */
const aboveBound = f32(kCheckedBound * (1 + 2 ** -23));
const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, kCheckedBound, -kCheckedBound, aboveBound, -aboveBound, 3e38, 1e-45, -0];

describe('checked gradient writes', () => {
  describe('slotWithinBound: js and wasm against the definition', () => {
    const seed = freshSeed();
    it(`2,000 random ranges with NaN, ±Inf and values at and past the bound inside and outside them (seed ${seed})`, () => {
      const rand = rng(seed);
      const capacity = 256;
      const [shard] = allocateShards(computeLayout([{ name: 't', size: capacity }], capacity), 2, false);
      let failing = 0;
      for (let trial = 0; trial < 2000; trial++) {
        const slot = trial % 2;
        const g = shard.grads[slot];
        g.set(randomArray(capacity, rand, 10 ** Math.floor(rand() * 30)));
        for (let k = Math.floor(rand() * 4); k > 0; k--) g[Math.floor(rand() * capacity)] = specials[Math.floor(rand() * specials.length)];
        const start = Math.floor(rand() * capacity);
        const end = start + Math.floor(rand() * (capacity - start + 1));
        let expected = true;
        for (let i = start; i < end; i++) if (!(Math.abs(g[i]) <= kCheckedBound)) expected = false;
        if (!expected) failing++;
        const where = `trial ${trial}, slot ${slot}, [${start}, ${end})`;
        expect(jsKernels.slotWithinBound(shard, slot, start, end, kCheckedBound), `js ${where}`).to.equal(expected);
        expect(wasmKernels.slotWithinBound(shard, slot, start, end, kCheckedBound), `wasm ${where}`).to.equal(expected);
      }
      // Both outcomes were exercised many times.
      expect(failing).to.be.within(200, 1800);
    });

    it('one bad element anywhere in a long range is found (every position of a 100-element range)', () => {
      const [shard] = allocateShards(computeLayout([{ name: 't', size: 128 }], 128), 1, false);
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, aboveBound]) {
        for (let at = 3; at < 103; at++) {
          shard.grads[0].fill(0.5);
          shard.grads[0][at] = bad;
          expect(wasmKernels.slotWithinBound(shard, 0, 3, 103, kCheckedBound), `${bad} at ${at}`).to.equal(false);
          expect(wasmKernels.slotWithinBound(shard, 0, at + 1, 120, kCheckedBound), `${bad} just before the range`).to.equal(true);
          expect(wasmKernels.slotWithinBound(shard, 0, 0, at, kCheckedBound), `${bad} just after the range`).to.equal(true);
        }
      }
    });
  });

  describe('the optimizer', () => {
    const sizes = { 'a/kernel': 1000, 'a/bias': 17, 'b/kernel': 531 };
    type Name = keyof typeof sizes;
    const names = Object.keys(sizes) as Name[];
    const grads = (rand: () => number) => Object.fromEntries(names.map((n) => [n, randomArray(sizes[n], rand)])) as Record<Name, Float32Array>;
    const make = (threads: number, gradSlots: number, params: Record<string, Float32Array>) =>
      createOptimizer({ params, threads, gradSlots, maxShardParams: 256, dispatch: threads > 1 ? 'pool' : 'inline', lr: 1e-2, weightDecay: 0.1 });
    const bits = (o: ShardedAdamW) => names.map((n) => Buffer.from(o.params[n].slice().buffer).toString('base64') + Buffer.from(o.state.v[n].slice().buffer).toString('base64')).join('|');

    for (const threads of [1, 2, 3]) {
      for (const gradSlots of [1, 2]) {
        it(`${threads} thread(s), ${gradSlots} slot(s): setGrads skips the scan (gradNorm NaN) and gives the bits of writing the views (scanned)`, async () => {
          const seed = freshSeed();
          const rand = rng(seed);
          const init = grads(rand);
          const checked = await make(threads, gradSlots, init);
          const scanned = await make(threads, gradSlots, init);
          try {
            for (let t = 0; t < 5; t++) {
              for (let r = 0; r < gradSlots; r++) {
                const g = grads(rand);
                checked.setGrads(g, r);
                const views = scanned.gradSlot(r);
                for (const n of names) views[n].set(g[n]);
              }
              const a = await checked.step();
              const b = await scanned.step();
              expect(a.gradNorm, `seed ${seed}: the checked step ran no scan`).to.be.NaN;
              expect(b.gradNorm, 'the scanned step computed the norm').to.be.above(0);
            }
            expect(bits(checked), `seed ${seed}`).to.equal(bits(scanned));
          } finally {
            await checked.close();
            await scanned.close();
          }
        });
      }
    }

    const bad: Array<[string, number]> = [['NaN', Number.NaN], ['+Inf', Number.POSITIVE_INFINITY], ['-Inf', Number.NEGATIVE_INFINITY]];
    for (const [what, value] of bad) {
      it(`${what} given to setGrads is never applied: step() throws naming the tensor and element`, async () => {
        const seed = freshSeed();
        const rand = rng(seed);
        const opt = await make(2, 2, grads(rand));
        try {
          const before = bits(opt);
          opt.setGrads(grads(rand), 0);
          const g = grads(rand);
          const at = Math.floor(rand() * sizes['b/kernel']);
          g['b/kernel'][at] = value;
          opt.setGrads(g, 1);
          const err = await opt.step().then(() => null, (e: unknown) => e);
          expect(err, `seed ${seed}`).to.be.instanceOf(NonFiniteGradientError);
          expect((err as Error).message).to.include(`non-finite gradient in tensor "b/kernel" (element ${at} of slot 1`);
          expect(bits(opt)).to.equal(before);
          expect(opt.globalStep).to.equal(0);
        } finally {
          await opt.close();
        }
      });
    }

    it('a NaN written through views held from before setGrads is still caught (handed-out views void the stamps)', async () => {
      const rand = rng(freshSeed());
      const opt = await make(1, 1, grads(rand));
      try {
        const held = opt.grads;
        opt.setGrads(grads(rand));
        held['a/kernel'].set([Number.NaN], 5);
        const before = bits(opt);
        await opt.step().then(() => expect.fail('the step must throw'), (e: unknown) => expect(e).to.be.instanceOf(NonFiniteGradientError));
        expect(bits(opt)).to.equal(before);
      } finally {
        await opt.close();
      }
    });

    it('a partial setGrads, or a value past 2^121, is not stamped: the step scans (and applies a finite one)', async () => {
      const rand = rng(freshSeed());
      const opt = await make(1, 1, grads(rand));
      try {
        const g = grads(rand);
        opt.setGrads(g);
        expect((await opt.step()).gradNorm).to.be.NaN;
        opt.setGrads({ 'a/kernel': g['a/kernel'] }); // the other two tensors keep last step's values, unchecked
        expect((await opt.step()).gradNorm).to.be.above(0);
        g['a/bias'][0] = 1e37;
        opt.setGrads(g);
        const r = await opt.step();
        expect(r.gradNorm).to.be.above(1e36);
        expect(r.skipped).to.equal(false);
        // A stamp lasts one step: the next step, with nothing written, scans again.
        expect((await opt.step()).gradNorm).to.be.above(1e36);
      } finally {
        await opt.close();
      }
    });
  });

  it('the trainer: replicas check their gradients as they write them, so a run without clipping skips the scan', async () => {
    const trainer = await Trainer.create({ config: tinyConfig({ optimizer: { lr: 0.01 } }), threads: 2 });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await trainer.step();
        expect(r.skipped).to.equal(false);
        expect(r.gradNorm, 'no norm pass: the replicas checked every slot').to.be.NaN;
        expect(r.loss).to.be.above(0);
      }
    } finally {
      await trainer.close();
    }
  });
});
