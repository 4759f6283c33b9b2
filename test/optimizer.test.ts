// The pool's AdamW against the float64 reference: every convention and knob, threads 1, 2 and 3, tensors
// that cross shard boundaries, 12 steps, fresh random inputs each run (replay with SHARDTRAIN_SEED).

import { expect } from 'chai';
import { createOptimizer, conventions, type ConventionName, type OptimizerOptions, type ShardedAdamW } from '../src/index.js';
import { freshSeed, maxRelativeError, randomArray, referenceState, referenceStep, rng, type ReferenceConfig } from './reference.js';

const sizes = [30011, 37, 25000, 3, 15005, 1];
const names = ['enc/dense/kernel', 'enc/dense/bias', 'dec/LayerNorm/gamma', 'dec/LayerNorm/beta', 'head/kernel', 'head/bias'];
const kSteps = 12;
const seed = freshSeed();

interface Case {
  title: string;
  options: Partial<OptimizerOptions>;
  /** Reference overrides. */
  reference?: Partial<ReferenceConfig>;
  slots?: number;
}

const conventionCases: Case[] = (Object.keys(conventions) as ConventionName[]).map((convention) => ({
  title: convention,
  options: { convention },
}));

const knobCases: Case[] = [
  { title: 'pytorch + amsgrad', options: { convention: 'pytorch', amsgrad: true } },
  { title: 'keras + amsgrad + clipValue', options: { convention: 'keras', amsgrad: true, clipValue: 0.3 } },
  { title: 'l2 + clipGlobalNorm (active)', options: { convention: 'l2', clipGlobalNorm: 5 } },
  { title: 'paper + linear warmup/decay schedule', options: { convention: 'paper', schedule: { name: 'linear', warmupSteps: 3, totalSteps: 10 } } },
  { title: 'mxnet-legacy + bert schedule + BERT exclusions', options: { convention: 'mxnet-legacy', schedule: { name: 'bert', warmupSteps: 4, totalSteps: 8 }, excludeFromWeightDecay: 'bert' } },
  { title: 'bert + 3 gradient slots + groups', options: { convention: 'bert', gradSlots: 3, paramGroups: [{ match: '^head/', lrMultiplier: 0.5, weightDecay: 0.2 }] }, slots: 3 },
  { title: 'knobs alone: decoupled, no bias correction, torch ε', options: { convention: 'pytorch', biasCorrection: false } },
  { title: 'knobs alone: l2 decay with ε̂', options: { convention: 'keras', decay: 'l2' } },
];

async function runAgainstReference(c: Case, threads: number): Promise<{ worst: number; opt: ShardedAdamW }> {
  const next = rng(seed + threads);
  const initial = sizes.map((n) => randomArray(n, next));
  const R = c.slots ?? 1;
  const opt = await createOptimizer({
    params: names.map((name, i) => [name, initial[i]] as const),
    threads,
    dispatch: 'pool',
    lr: 0.01,
    weightDecay: 0.1,
    maxShardParams: 8192,
    eps: 1e-6,
    ...c.options,
  });
  try {
    const ref: ReferenceConfig = {
      knobs: opt.knobs,
      lr: 0.01,
      multiplier: (t) => opt.schedule.multiplierAt(t),
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-6,
      weightDecay: opt.decayTable.map((e) => e.weightDecay),
      lrMultiplier: opt.decayTable.map((e) => e.lrMultiplier),
      clipGlobalNorm: c.options.clipGlobalNorm,
      clipValue: c.options.clipValue,
      ...c.reference,
    };
    const st = referenceState(initial);
    for (let step = 0; step < kSteps; step++) {
      // Gradients of varied scale per step so that v, the ratio m/√v and the clip all move.
      const slots = Array.from({ length: R }, () => sizes.map((n) => randomArray(n, next, 0.5 + step / 4)));
      for (let r = 0; r < R; r++) opt.setGrads(Object.fromEntries(names.map((name, i) => [name, slots[r][i]])), r);
      const result = await opt.step();
      expect(result.skipped).to.equal(false);
      expect(referenceStep(st, ref, slots)).to.equal(true);
    }
    expect(opt.globalStep).to.equal(kSteps);
    let worst = 0;
    names.forEach((name, k) => {
      // floor: an element near zero is compared on the scale of one lr-sized step.
      worst = Math.max(worst, maxRelativeError(opt.params[name].slice(), st.p[k], 1e-2));
      worst = Math.max(worst, maxRelativeError(opt.state.m[name].slice(), st.m[k], 1e-3));
      worst = Math.max(worst, maxRelativeError(opt.state.v[name].slice(), st.v[k], 1e-6));
    });
    return { worst, opt };
  } catch (err) {
    await opt.close();
    throw err;
  }
}

describe(`AdamW vs float64 reference (seed ${seed})`, function () {
  this.timeout(120000);
  for (const c of [...conventionCases, ...knobCases]) {
    for (const threads of [1, 2, 3]) {
      it(`${c.title}, ${threads} thread(s)`, async () => {
        const { worst, opt } = await runAgainstReference(c, threads);
        await opt.close();
        // float32 storage rounds each stored value by ≤ 2^-24 relative; over 12 steps the kernel and the
        // reference may land on neighbouring floats a few times. 2^-20 ≈ 1e-6 allows ~16 ulps, no more.
        expect(worst, `worst relative error`).to.be.below(2 ** -20);
      });
    }
  }

  it('the layout really crosses shard boundaries in these tests', async () => {
    const opt = await createOptimizer({ params: names.map((n, i) => [n, new Float32Array(sizes[i])] as const), maxShardParams: 8192, threads: 1 });
    const spanning = opt.layout.tensors.filter((t) => opt.layout.segments.filter((s) => s.tensor === t.index).length > 1);
    expect(opt.layout.shards.length).to.be.greaterThan(5);
    expect(spanning.map((t) => t.name)).to.include.members(['enc/dense/kernel', 'dec/LayerNorm/gamma', 'head/kernel']);
    await opt.close();
  });
});
