// The pool's AdamW against the float64 reference: every convention and knob, threads 1, 2 and 3, tensors
// that cross shard boundaries, 12 steps, fresh random inputs each run (replay with SHARDTRAIN_SEED).
//
// Two checks per case:
// - every step, from the optimizer's own float32 state, each element of p, m, v lies within the float32
//   rounding bound the reference derives for it (test/reference.ts), for the default kernel ('auto');
// - 12 steps of the JS kernel (float64 arithmetic, float32 storage) track the reference to 2^-30 normwise.

import { expect } from 'chai';
import { createOptimizer, conventions, type ConventionName, type OptimizerOptions, type ShardedAdamW } from '../src/index.js';
import { freshSeed, normwiseError, peakByScan, randomArray, referenceState, referenceStep, rng, stateFrom, type ReferenceConfig } from './reference.js';

// 41057 floats: three norm chunks (16384), so threads 2 and 3 each get their own range.
const sizes = [20011, 37, 12000, 3, 9005, 1];
const names = ['enc/dense/kernel', 'enc/dense/bias', 'dec/LayerNorm/gamma', 'dec/LayerNorm/beta', 'head/kernel', 'head/bias'];
const kSteps = 12;
const seed = freshSeed();

interface Case {
  title: string;
  options: Partial<OptimizerOptions>;
  slots?: number;
  /** Multiplies the random gradients. */
  gradScale?: number;
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
  // Gradients near ε, where ε placement decides the step: torch's √v̂ + ε vs Keras' √v + ε.
  { title: 'pytorch, tiny gradients (ε matters)', options: { convention: 'pytorch' }, gradScale: 1e-6 },
  { title: 'keras, tiny gradients (ε matters)', options: { convention: 'keras' }, gradScale: 1e-6 },
];

function referenceConfig(opt: ShardedAdamW, c: Case): ReferenceConfig {
  return {
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
    peakMultiplier: peakByScan(opt.schedule),
  };
}

/** Runs the case; calls `check` after every step with the reference computed from the pre-step state. */
async function runCase(c: Case, threads: number, kernel: 'auto' | 'js', onStep: (opt: ShardedAdamW, ref: ReturnType<typeof stateFrom>, slots: Float32Array[][]) => void) {
  const next = rng(seed + threads);
  const initial = sizes.map((n) => randomArray(n, next));
  const R = c.slots ?? 1;
  const opt = await createOptimizer({
    params: names.map((name, i) => [name, initial[i]] as const),
    threads,
    dispatch: 'pool',
    kernel,
    lr: 0.01,
    weightDecay: 0.1,
    maxShardParams: 8192,
    eps: 1e-6,
    ...c.options,
  });
  try {
    const config = referenceConfig(opt, c);
    for (let step = 0; step < kSteps; step++) {
      const slots = Array.from({ length: R }, () => sizes.map((n) => randomArray(n, next, (0.5 + step / 4) * (c.gradScale ?? 1))));
      for (let r = 0; r < R; r++) opt.setGrads(Object.fromEntries(names.map((name, i) => [name, slots[r][i]])), r);
      const before = stateFrom(
        opt.globalStep,
        names.map((n) => opt.params[n].slice()),
        names.map((n) => opt.state.m[n].slice()),
        names.map((n) => opt.state.v[n].slice()),
        opt.state.vmax ? names.map((n) => opt.state.vmax![n].slice()) : null,
      );
      expect(referenceStep(before, config, slots)).to.equal(true);
      expect((await opt.step()).skipped).to.equal(false);
      onStep(opt, before, slots);
    }
    expect(opt.globalStep).to.equal(kSteps);
    return initial;
  } finally {
    await opt.close();
  }
}

describe(`AdamW vs float64 reference (seed ${seed})`, function () {
  this.timeout(120000);
  for (const c of [...conventionCases, ...knobCases]) {
    for (const threads of [1, 2, 3]) {
      it(`${c.title}, ${threads} thread(s)`, async () => {
        let kernel = '';
        let worst = 0;
        await runCase(c, threads, 'auto', (opt, ref) => {
          kernel = opt.kernel;
          names.forEach((name, k) => {
            for (const [region, got, want, bound] of [
              ['params', opt.params[name], ref.p[k], ref.bound.p[k]],
              ['m', opt.state.m[name], ref.m[k], ref.bound.m[k]],
              ['v', opt.state.v[name], ref.v[k], ref.bound.v[k]],
            ] as const) {
              const values = got.slice();
              for (let i = 0; i < values.length; i++) {
                const err = Math.abs(values[i] - want[i]);
                worst = Math.max(worst, err / bound[i]);
                if (!(err <= bound[i])) {
                  throw new Error(`step ${opt.globalStep}, ${region} of ${name}[${i}]: kernel ${opt.kernel} gave ${values[i]}, reference ${want[i]}, allowed ±${bound[i].toExponential(2)}`);
                }
              }
            }
          });
        });
        if (process.env.SHARDTRAIN_SHOW_ERRORS) console.log(`      ${kernel}: worst error ${worst.toFixed(3)} of its float32 bound`);
      });
    }
  }

  for (const c of conventionCases) {
    it(`${c.title}: 12 steps of the JS kernel track a free-running reference to 2^-30`, async () => {
      // The same initial values runCase draws first for 2 threads; `free` never looks at the optimizer again.
      const next = rng(seed + 2);
      const free = referenceState(sizes.map((n) => randomArray(n, next)));
      let got: Float32Array[] = [];
      await runCase(c, 2, 'js', (opt, _ref, slots) => {
        referenceStep(free, referenceConfig(opt, c), slots);
        got = names.map((n) => opt.params[n].slice());
      });
      expect(free.step).to.equal(kSteps);
      names.forEach((name, k) => expect(normwiseError(got[k], free.p[k]), name).to.be.below(2 ** -30));
    });
  }

  it('the layout really crosses shard boundaries in these tests', async () => {
    const opt = await createOptimizer({ params: names.map((n, i) => [n, new Float32Array(sizes[i])] as const), maxShardParams: 8192, threads: 1 });
    const spanning = opt.layout.tensors.filter((t) => opt.layout.segments.filter((s) => s.tensor === t.index).length > 1);
    expect(opt.layout.shards.length).to.be.greaterThan(5);
    expect(spanning.map((t) => t.name)).to.include.members(['enc/dense/kernel', 'dec/LayerNorm/gamma', 'head/kernel']);
    await opt.close();
  });
});
