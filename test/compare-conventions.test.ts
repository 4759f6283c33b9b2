// The conventions as `shardtrain compare` runs them, on a tiny char-lm through the real Trainer:
//   - with weight decay 0, pytorch, l2, paper and adamc are the same optimizer: same parameters after 20 steps;
//   - keras, mxnet-legacy, bert, tf-sgd-decay and caffe differ from pytorch exactly where their knobs say: step by step, each
//     run's update equals the float64 reference of *pytorch with only those knobs changed*, and that
//     reference is measurably different from pytorch's own.

import { expect } from 'chai';
import { conventions, Trainer, type ConventionKnobs, type ConventionName } from '../src/index.js';
import { parseConfig } from '../src/api/train.js';
import { buildGrid, plainColumn } from '../src/compare/grid.js';
import { runOne } from '../src/compare/run-one.js';
import { normwiseError, referenceStep, stateFrom, type ReferenceConfig } from './reference.js';
import { tinyConfig } from './fixtures/tiny-config.js';

function maxRelDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  return Math.max(...Object.keys(a).map((name) => normwiseError(a[name], b[name])));
}

describe('compare: conventions at weight decay 0', function () {
  this.timeout(120000);

  it('pytorch, l2, paper and adamc give the same parameters (float32 rounding) after 20 steps; keras, mxnet-legacy, bert, tf-sgd-decay and caffe do not', async () => {
    const base = parseConfig(tinyConfig({ steps: 20, optimizer: { lr: 0.01, schedule: { name: 'linear', warmupSteps: 3 }, excludeFromWeightDecay: 'bert', clipGlobalNorm: 1, eps: 1e-6 } }));
    const names: ConventionName[] = ['pytorch', 'l2', 'paper', 'adamc', 'keras', 'mxnet-legacy', 'bert', 'tf-sgd-decay', 'caffe'];
    const grid = buildGrid({ base, conventions: names, decays: [plainColumn(0)], seeds: 1, exclusionExample: true });
    expect(grid).to.have.length(names.length, 'no exclusion example at λ = 0');
    const params: Record<string, Record<string, Float32Array>> = {};
    for (const run of grid) params[run.convention] = (await runOne(run, { threads: 2, evalEvery: 10, normRule: 'bert', keepParams: true })).params!;
    // Float32 rounding: a few ulps of the tensor's scale.
    for (const same of ['l2', 'paper', 'adamc']) expect(maxRelDiff(params[same], params.pytorch), same).to.be.below(1e-6);
    // Not a vacuous test: the others move away from pytorch by far more than rounding.
    for (const other of ['keras', 'mxnet-legacy', 'bert', 'tf-sgd-decay', 'caffe']) expect(maxRelDiff(params[other], params.pytorch), other).to.be.above(1e-5);
  });

  // What each convention changes relative to pytorch when λ = 0 (`decay` has nothing to act on then).
  const knobDiffs: Array<{ name: ConventionName; diff: Partial<ConventionKnobs> }> = [
    { name: 'pytorch', diff: {} },
    { name: 'l2', diff: {} },
    { name: 'paper', diff: {} },
    { name: 'keras', diff: { epsilonHat: true } },
    { name: 'mxnet-legacy', diff: { epsilonHat: true } },
    { name: 'bert', diff: { epsilonHat: true, biasCorrection: false } },
    { name: 'adamc', diff: {} },
    { name: 'tf-sgd-decay', diff: { epsilonHat: true } },
    { name: 'caffe', diff: { epsilonHat: true } },
  ];

  for (const { name, diff } of knobDiffs) {
    it(`${name}: each of 6 steps equals the float64 reference of pytorch with ${Object.keys(diff).length === 0 ? 'no knob' : Object.keys(diff).join(' and ')} changed`, async () => {
      // eps 1e-6 (BERT's) makes the ε placement visible; clipping on, as in the default config.
      const config = tinyConfig({ steps: 6, replicas: 1, optimizer: { convention: name, weightDecay: 0, lr: 0.01, schedule: { name: 'linear', warmupSteps: 3 }, eps: 1e-6, betas: [0.9, 0.99], clipGlobalNorm: 1 } });
      const trainer = await Trainer.create({ config, threads: 2 });
      try {
        const names = trainer.tensors.map((t) => t.name);
        const list = (r: Record<string, Float32Array>) => names.map((n) => r[n]);
        const ref = (knobs: ConventionKnobs): ReferenceConfig => ({
          knobs,
          lr: 0.01,
          multiplier: (t) => trainer.optimizer.schedule.multiplierAt(t),
          beta1: 0.9,
          beta2: 0.99,
          eps: 1e-6,
          weightDecay: names.map(() => 0),
          lrMultiplier: names.map(() => 1),
          clipGlobalNorm: 1,
        });
        let differsFromPytorch = false;
        for (let t = 0; t < 6; t++) {
          const p = list(trainer.snapshot('params'));
          const m = list(trainer.snapshot('m'));
          const v = list(trainer.snapshot('v'));
          await trainer.step();
          const g = names.map((n) => Float32Array.from({ length: trainer.optimizer.grads[n].length }, (_, i) => trainer.optimizer.grads[n].at(i)!));
          const expected = stateFrom(t, p, m, v, null);
          referenceStep(expected, ref({ ...conventions.pytorch, ...diff }), [g]);
          const pytorch = stateFrom(t, p, m, v, null);
          referenceStep(pytorch, ref(conventions.pytorch), [g]);
          const got = list(trainer.snapshot('params'));
          got.forEach((x, k) => {
            for (let i = 0; i < x.length; i++) {
              const err = Math.abs(x[i] - expected.p[k][i]);
              // err === 0: where g = m = v = 0 (an embedding row no example used) the reference's bound is 0/0.
              if (!(err <= expected.bound.p[k][i] || err === 0)) expect.fail(`${name} step ${t + 1}, ${names[k]}[${i}]: ${x[i]} vs reference ${expected.p[k][i]} (bound ${expected.bound.p[k][i]})`);
              if (Math.abs(expected.p[k][i] - pytorch.p[k][i]) > 4 * (expected.bound.p[k][i] + pytorch.bound.p[k][i])) differsFromPytorch = true;
            }
          });
        }
        expect(differsFromPytorch).to.equal(Object.keys(diff).length > 0, 'the knob difference is visible exactly when there is one');
      } finally {
        await trainer.close();
      }
    });
  }
});
