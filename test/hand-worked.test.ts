// One step worked by hand, so the arithmetic of each convention can be read off this file.
import { expect } from 'chai';
import { conventions, createOptimizer, type ConventionName } from '../src/index.js';

// p = 1, g = 0.5, lr = 0.1, λ = 0.1, β = (0.9, 0.999), ε = 1e-8, step t = 1.
//   m = 0.1·0.5 = 0.05;  v = 0.001·0.25 = 2.5e-4;  √v = 0.015811388…
//   bc1 = 0.1, bc2 = 0.001 → m̂ = 0.5, √v̂ = 0.5: the bias-corrected Adam direction is m̂/√v̂ = 1.
// pytorch:      p = 1·(1 − 0.1·0.1) − 0.1/0.1 · 0.05/(0.015811388/0.031622777 + 1e-8) = 0.99 − 0.1 = 0.89
// keras:        α = 0.1·√0.001/0.1 = 0.031622777; p = 0.99 − α·0.05/(0.015811388 + 1e-8) = 0.89
// l2:           g = 0.5 + 0.1·1 = 0.6 → m̂ = 0.6, √v̂ = 0.6 → p = 1 − 0.1 = 0.9 (decay absorbed by Adam's scaling)
// bert:         no bias correction: p = 1 − 0.1·(0.05/0.015811388 + 0.1·1) = 1 − 0.1·3.262277 = 0.6837723
// mxnet-legacy: p' = 1 − 0.1 = 0.9, then p = 0.9 − α·λ·0.9 = 0.9·(1 − 0.0031622777) = 0.89715395
// paper (constant schedule, η = 1): p = 1 − 1·0.1·1 − 0.1 = 0.8
// adamc (constant schedule, lr_max = lr = 0.1): p = 1·(1 − 0.1·0.1²/0.1) − 0.1 = 0.89, as pytorch
// tf-sgd-decay: the keras step p' = 1 − α·0.05/0.015811388 = 0.9, then SGD(lr 1) on λ/2·p'²: p = 0.9·(1 − 0.1) = 0.81
// caffe:        g = 0.5 + 0.1·1 = 0.6 → m = 0.06, √v = √(0.001·0.36) = 0.018973666; p = 1 − α·0.06/0.018973666 = 0.9
const expected: Record<ConventionName, number> = {
  pytorch: 0.89,
  keras: 0.89,
  l2: 0.9,
  bert: 1 - 0.1 * (0.05 / Math.sqrt(2.5e-4) + 0.1),
  'mxnet-legacy': 0.9 * (1 - 0.1 * Math.sqrt(0.001) / 0.1 * 0.1),
  paper: 0.8,
  adamc: 0.89,
  'tf-sgd-decay': 0.81,
  caffe: 0.9,
};

describe('one step by hand', () => {
  for (const [convention, p] of Object.entries(expected) as [ConventionName, number][]) {
    it(`${convention}: p = ${p.toFixed(8)}`, async () => {
      const opt = await createOptimizer({ params: { w: Float32Array.of(1) }, convention, lr: 0.1, weightDecay: 0.1, eps: 1e-8, threads: 1 });
      await opt.step({ w: Float32Array.of(0.5) });
      expect(opt.params.w.at(0)).to.be.closeTo(p, 1e-6);
      expect(opt.state.m.w.at(0)).to.be.closeTo(conventions[convention].decay === 'l2' ? 0.06 : 0.05, 1e-8);
      expect(opt.lr).to.equal(0.1);
      await opt.close();
    });
  }
});

// Cautious weight decay (pytorch's numbers above): the update u = m̂/(√v̂ + ε) = 1 > 0.
//   p = +1: u·p ≥ 0, decayed as pytorch:   1·(1 − 0.01) − 0.1 = 0.89
//   p = −1: u·p < 0, not decayed:          −1 − 0.1 = −1.1   (pytorch: −1·(1 − 0.01) − 0.1 = −1.09)
//   p = 0:  u·p = 0 counts as agreeing:    0 − 0.1 = −0.1
describe('one step by hand: cautious weight decay', () => {
  for (const [p0, p] of [[1, 0.89], [-1, -1.1], [0, -0.1]] as const) {
    it(`p = ${p0}, g = 0.5: p = ${p}`, async () => {
      const opt = await createOptimizer({ params: { w: Float32Array.of(p0) }, cautiousWeightDecay: true, lr: 0.1, weightDecay: 0.1, eps: 1e-8, threads: 1 });
      await opt.step({ w: Float32Array.of(0.5) });
      expect(opt.params.w.at(0)).to.be.closeTo(p, 1e-6);
      await opt.close();
    });
  }
});
