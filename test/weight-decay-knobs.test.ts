// The new weight-decay knobs (issue 18) against the float64 reference: conventions adamc, tf-sgd-decay and
// caffe, cautiousWeightDecay, weightDecaySchedule and weightDecayTimescale; 50 steps, tensors crossing
// 1024-float shards, threads 1, 2 and 3, both kernels (js and wasm). Fresh random inputs every run (the seed
// is in the suite title; SHARDTRAIN_SEED=… replays it).
//
// Per case:
// - every step, from each kernel's own float32 state, every element of p, m and v lies within the float32
//   rounding bound test/reference.ts derives for it (the bound optimizer.test.ts and kernels-wasm.test.ts use);
// - each kernel gives the same bits at threads 1 (inline), 1, 2 and 3 (pool);
// - the knob is visible: the reference of the same step *without* the knob lands outside that bound somewhere
//   (so a knob the optimizer ignored could not pass).
// The reference is given its schedules as formulas written here, and η_max by a scan over every step, not
// the optimizer's own closed forms.

import { expect } from 'chai';
import { createOptimizer, type OptimizerOptions, type ShardedAdamW } from '../src/index.js';
import { freshSeed, optimizerState, outsideBound, randomArray, referenceConfigOf, rng, type OptimizerState, type ReferenceConfig } from './reference.js';

const seed = freshSeed();
// 6583 floats over 1024-float shards: t1 spans four shards, t3 three; t2 (17) and t5 (1) are odd-sized.
const sizes = [1000, 3001, 17, 2500, 64, 1];
const names = sizes.map((_, i) => `t${i}`);
const kSteps = 50;
const kLr = 1e-2;

interface Case {
  title: string;
  options: Partial<OptimizerOptions>;
  slots?: number;
  /** μ_t of the λ schedule, as a formula (default 1). */
  mu?: (t: number) => number;
  /** λ the case must resolve to (timescale cases), from the arithmetic in its title. */
  lambda?: number;
  /** The same reference without the new knob: it must differ from the kernel beyond the bound somewhere. */
  without: (c: ReferenceConfig) => ReferenceConfig;
}

const cosine = (t: number, w: number, T: number) => (t < w ? t / w : Math.max(0, 0.5 * (1 + Math.cos((Math.PI * (t - w)) / (T - w)))));
const linear = (t: number, w: number, T: number) => (t < w ? t / w : Math.max(0, (T - t) / (T - w)));
const knobs = (c: ReferenceConfig, over: Partial<ReferenceConfig['knobs']>): ReferenceConfig => ({ ...c, knobs: { ...c.knobs, ...over } });
const notCautious = (c: ReferenceConfig) => knobs(c, { cautiousWeightDecay: false });

const cases: Case[] = [
  // AdamC against pytorch: with a schedule the decay rate λ·lr_t²/lr_max differs from pytorch's λ·lr_t.
  { title: 'adamc, cosine warmup (η_max = 1)', options: { convention: 'adamc', schedule: { name: 'cosine', warmupSteps: 5, totalSteps: 50 } }, without: (c) => knobs(c, { decay: 'decoupled' }) },
  {
    title: 'adamc, bert schedule (η_max = 0.9 < 1) and a group at half the lr',
    options: { convention: 'adamc', schedule: { name: 'bert', warmupSteps: 10, totalSteps: 40 }, paramGroups: [{ match: '^t1$', lrMultiplier: 0.5 }] },
    without: (c) => ({ ...c, peakMultiplier: 1 }),
  },
  { title: 'tf-sgd-decay, linear schedule (the decay ignores it)', options: { convention: 'tf-sgd-decay', schedule: { name: 'linear', warmupSteps: 5, totalSteps: 50 } }, without: (c) => knobs(c, { decay: 'after-update' }) },
  { title: 'caffe, 2 slots, clipGlobalNorm', options: { convention: 'caffe', gradSlots: 2, clipGlobalNorm: 5 }, slots: 2, without: (c) => knobs(c, { epsilonHat: false }) },
  { title: 'pytorch + cautiousWeightDecay', options: { convention: 'pytorch', cautiousWeightDecay: true }, without: notCautious },
  { title: 'paper + cautiousWeightDecay, linear schedule', options: { convention: 'paper', cautiousWeightDecay: true, schedule: { name: 'linear', warmupSteps: 5, totalSteps: 50 } }, without: notCautious },
  { title: 'mxnet-legacy + cautiousWeightDecay + amsgrad (decay after the update)', options: { convention: 'mxnet-legacy', cautiousWeightDecay: true, amsgrad: true }, without: notCautious },
  { title: 'adamc + cautiousWeightDecay, cosine', options: { convention: 'adamc', cautiousWeightDecay: true, schedule: { name: 'cosine', totalSteps: 50 } }, without: notCautious },
  { title: 'tf-sgd-decay + cautiousWeightDecay, 3 slots, clipValue', options: { convention: 'tf-sgd-decay', cautiousWeightDecay: true, gradSlots: 3, clipValue: 0.3 }, slots: 3, without: notCautious },
  { title: 'bert + cautiousWeightDecay, t2 excluded', options: { convention: 'bert', cautiousWeightDecay: true, excludeFromWeightDecay: ['^t2$'] }, without: notCautious },
  {
    title: "pytorch + weightDecaySchedule 'lr' (cosine warmup)",
    options: { convention: 'pytorch', schedule: { name: 'cosine', warmupSteps: 5, totalSteps: 50 }, weightDecaySchedule: 'lr' },
    mu: (t) => cosine(t, 5, 50),
    without: (c) => ({ ...c, decayMultiplier: undefined }),
  },
  {
    title: 'l2 + weightDecaySchedule linear (its own warmup 10, total 50)',
    options: { convention: 'l2', weightDecaySchedule: { name: 'linear', warmupSteps: 10, totalSteps: 50 } },
    mu: (t) => linear(t, 10, 50),
    without: (c) => ({ ...c, decayMultiplier: undefined }),
  },
  {
    title: 'tf-sgd-decay + weightDecaySchedule cosine (total 50) under a constant lr',
    options: { convention: 'tf-sgd-decay', weightDecaySchedule: { name: 'cosine', totalSteps: 50 } },
    mu: (t) => cosine(t, 0, 50),
    without: (c) => ({ ...c, decayMultiplier: undefined }),
  },
  // λ = 1/(r_peak·τ_iter): pytorch r = lr = 0.01, τ = 400 → 0.25.
  { title: 'pytorch + weightDecayTimescale 400 iterations: λ = 1/(0.01·400) = 0.25', options: { convention: 'pytorch', weightDecay: undefined, weightDecayTimescale: { iterations: 400 } }, lambda: 0.25, without: (c) => ({ ...c, weightDecay: c.weightDecay.map(() => 0.1) }) },
  // paper r = η_max = 1 (no lr), τ = 2 epochs × 25 = 50 → 0.02.
  { title: 'paper + weightDecayTimescale 2 epochs × 25: λ = 1/(1·50) = 0.02', options: { convention: 'paper', weightDecayTimescale: { epochs: 2, iterationsPerEpoch: 25 } }, lambda: 0.02, without: (c) => ({ ...c, weightDecay: c.weightDecay.map(() => 0.1) }) },
  // adamc r = lr·η_max = 0.01·0.9 under bert's schedule, τ = 100 → 1/0.9.
  {
    title: 'adamc + weightDecayTimescale 100 iterations, bert schedule: λ = 1/(0.01·0.9·100)',
    options: { convention: 'adamc', schedule: { name: 'bert', warmupSteps: 10, totalSteps: 40 }, weightDecayTimescale: { iterations: 100 } },
    lambda: 1 / (0.01 * 0.9 * 100),
    without: (c) => ({ ...c, weightDecay: c.weightDecay.map(() => 0.1) }),
  },
];

async function runCase(c: Case, kernel: 'js' | 'wasm', threads: number, dispatch: 'pool' | 'inline', onStep?: (opt: ShardedAdamW, before: OptimizerState, slots: Float32Array[][]) => void): Promise<OptimizerState> {
  const next = rng(seed);
  const opt = await createOptimizer({
    params: sizes.map((n, i) => [names[i], randomArray(n, next)] as const),
    threads,
    dispatch,
    kernel,
    maxShardParams: 1024,
    lr: kLr,
    weightDecay: c.options.weightDecayTimescale ? undefined : 0.1,
    eps: 1e-6,
    ...c.options,
  });
  try {
    const R = c.slots ?? 1;
    for (let step = 0; step < kSteps; step++) {
      const slots = Array.from({ length: R }, () => sizes.map((n) => randomArray(n, next, 0.05 * (1 + step / 10))));
      slots.forEach((g, r) => opt.setGrads(Object.fromEntries(g.map((x, i) => [names[i], x])), r));
      const before = optimizerState(opt, names);
      expect((await opt.step()).skipped).to.equal(false);
      onStep?.(opt, before, slots);
    }
    expect(opt.globalStep).to.equal(kSteps);
    return optimizerState(opt, names);
  } finally {
    await opt.close();
  }
}

describe(`new weight-decay knobs vs the float64 reference, ${kSteps} steps (seed ${seed})`, function () {
  this.timeout(240000);

  it('the layout crosses shard boundaries', async () => {
    const opt = await createOptimizer({ params: sizes.map((n, i) => [names[i], new Float32Array(n)] as const), maxShardParams: 1024, threads: 1 });
    const spanning = opt.layout.tensors.filter((t) => opt.layout.segments.filter((s) => s.tensor === t.index).length > 1).map((t) => t.name);
    expect(spanning).to.include.members(['t1', 't3']);
    await opt.close();
  });

  for (const c of cases) {
    it(`${c.title}: each step within the float32 bound (js and wasm, 2 threads), the same bits at threads 1, 2, 3, and the knob visible`, async () => {
      for (const kernel of ['js', 'wasm'] as const) {
        let visible = 0;
        await runCase(c, kernel, 2, 'pool', (opt, before, slots) => {
          const config = referenceConfigOf(opt, { clipGlobalNorm: c.options.clipGlobalNorm, clipValue: c.options.clipValue, decayMultiplier: c.mu });
          if (c.lambda !== undefined) opt.decayTable.forEach((e) => expect(e.weightDecay).to.be.closeTo(c.lambda!, 1e-15 * c.lambda!));
          const after = optimizerState(opt, names);
          const own = outsideBound(before, config, slots, after);
          if (own.count > 0) expect.fail(`${kernel}: ${own.count} elements outside the bound; first: ${own.first}`);
          visible += outsideBound(before, c.without(config), slots, after).count;
        });
        expect(visible, `${kernel}: the reference without the knob lands outside the bound at some step`).to.be.above(0);
        const base = await runCase(c, kernel, 1, 'inline');
        for (const threads of [1, 2, 3]) {
          const other = await runCase(c, kernel, threads, 'pool');
          for (const region of ['p', 'm', 'v'] as const) {
            other[region].forEach((x, t) => expect(Buffer.from(x.buffer).equals(Buffer.from(base[region][t].buffer)), `${kernel}, ${threads} threads: ${region} of t${t}`).to.equal(true));
          }
        }
      }
    });
  }
});
