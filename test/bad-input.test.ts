// Bad input: each case throws before any thread starts, with a message naming the key and the value.
import { expect } from 'chai';
import { createOptimizer, type OptimizerOptions } from '../src/index.js';
import { expectReject } from './reference.js';

const params = { 'dense/kernel': new Float32Array(8), 'dense/bias': new Float32Array(2) };

const cases: Array<[string, Partial<OptimizerOptions> | Record<string, unknown>, RegExp]> = [
  ['unknown convention', { convention: 'torch' }, /options\.convention must be one of 'pytorch', .* got "torch"/],
  ['unknown schedule name', { schedule: 'cosin' }, /options\.schedule must be one of .* got "cosin"/],
  ['unknown schedule object', { schedule: { name: 'warm' } }, /options\.schedule\.name must be one of .* got "warm"/],
  ['negative lr', { lr: -1 }, /options\.lr must be a finite number >= 0, got -1/],
  ['NaN lr', { lr: Number.NaN }, /options\.lr must be a finite number >= 0, got NaN/],
  ['beta1 = 1', { betas: [1, 0.999] }, /options\.betas\[0\] must be in \[0, 1\), got 1/],
  ['beta2 < 0', { betas: [0.9, -0.1] }, /options\.betas\[1\] must be in \[0, 1\), got -0\.1/],
  ['betas not a pair', { betas: [0.9] }, /options\.betas must be \[beta1, beta2\], got \[0\.9\]/],
  ['threads 0', { threads: 0 }, /options\.threads must be a positive integer, got 0/],
  ['threads 1.5', { threads: 1.5 }, /options\.threads must be a positive integer, got 1\.5/],
  ['negative weight decay', { weightDecay: -0.01 }, /options\.weightDecay must be a finite number >= 0, got -0\.01/],
  ['invalid exclusion regex', { excludeFromWeightDecay: ['bias', '*LayerNorm'] }, /excludeFromWeightDecay\[1\]: invalid regular expression "\*LayerNorm"/],
  ['onNonFinite typo', { onNonFinite: 'skipp' }, /options\.onNonFinite must be one of 'throw', 'skip', 'ignore', got "skipp"/],
  ['a misspelled option', { weight_decay: 0.1 }, /options\.weight_decay is not an option of createOptimizer/],
  ['clipGlobalNorm 0', { clipGlobalNorm: 0 }, /options\.clipGlobalNorm must be a finite number > 0, got 0/],
  ['knob of the wrong type', { amsgrad: 'yes' }, /options\.amsgrad must be true or false, got "yes"/],
  ['unknown decay mode', { decay: 'weight' }, /options\.decay must be one of 'decoupled', 'l2', 'after-update', 'schedule-scaled', 'corrected', 'sgd-after-update', got "weight"/],
  ['maxShardParams not aligned', { maxShardParams: 100 }, /options\.maxShardParams must be a positive multiple of 16, got 100/],
  // The new weight-decay knobs (issue 18).
  ['a negative timescale', { weightDecayTimescale: { epochs: -1, iterationsPerEpoch: 10 } }, /^options\.weightDecayTimescale\.epochs must be a finite number > 0, got -1$/],
  ['an infinite timescale', { weightDecayTimescale: { iterations: Infinity } }, /^options\.weightDecayTimescale\.iterations must be a finite number > 0, got Infinity$/],
  ['a NaN timescale', { weightDecayTimescale: { iterations: Number.NaN } }, /^options\.weightDecayTimescale\.iterations must be a finite number > 0, got NaN$/],
  ['a zero timescale', { weightDecayTimescale: { iterations: 0 } }, /^options\.weightDecayTimescale\.iterations must be a finite number > 0, got 0$/],
  ['a timescale in epochs without the data set', { weightDecayTimescale: { epochs: 3 } }, /^options\.weightDecayTimescale\.epochs needs iterationsPerEpoch \(training examples \/ global batch\)/],
  ['a timescale in two units', { weightDecayTimescale: { epochs: 3, iterations: 4 } }, /^options\.weightDecayTimescale must give τ in one unit, .* got keys epochs, iterations$/],
  ['a bad iterationsPerEpoch', { weightDecayTimescale: { epochs: 3, iterationsPerEpoch: -2 } }, /^options\.weightDecayTimescale\.iterationsPerEpoch must be a finite number > 0, got -2$/],
  ['a timescale that is not an object', { weightDecayTimescale: 5 }, /^options\.weightDecayTimescale must be \{ iterations: τ \} or \{ epochs: τ, iterationsPerEpoch: M \}, got 5$/],
  ['a timescale with an unknown key', { weightDecayTimescale: { iterations: 10, perEpoch: 3 } }, /^options\.weightDecayTimescale\.perEpoch is not a key of \{ iterations \}$/],
  ['weightDecay and a timescale', { weightDecay: 0.1, weightDecayTimescale: { iterations: 10 } }, /^options\.weightDecay and options\.weightDecayTimescale both set λ: give one of them$/],
  ['a timescale with l2', { convention: 'l2', weightDecayTimescale: { iterations: 10 } }, /^options\.weightDecayTimescale has no meaning with decay 'l2'/],
  ['a timescale at lr 0', { lr: 0, weightDecayTimescale: { iterations: 10 } }, /^options\.weightDecayTimescale: the decay rate at the schedule's peak is 0 \(lr 0, peak multiplier 1\)/],
  ['adamc with a schedule that never rises above 0', { convention: 'adamc', schedule: { name: 'linear', warmupSteps: 1, totalSteps: 1 } }, /^options\.decay 'corrected' \(convention "adamc"\) decays by λ·lr_t²\/lr_max, and lr_max, the schedule's peak lr, is 0 \(lr 0\.001 × peak multiplier 0 of 'linear'/],
  ['adamc at lr 0', { convention: 'adamc', lr: 0 }, /^options\.decay 'corrected' .* is 0 \(lr 0 × peak multiplier 1 of 'constant'/],
  ['cautiousWeightDecay with l2', { convention: 'l2', cautiousWeightDecay: true }, /^options\.cautiousWeightDecay needs a decay to mask, and decay 'l2' \(convention "l2"\) adds λ·p to the gradient instead/],
  ['cautiousWeightDecay with caffe (l2 too)', { convention: 'caffe', cautiousWeightDecay: true }, /^options\.cautiousWeightDecay needs a decay to mask, and decay 'l2' \(convention "caffe"\)/],
  ['cautiousWeightDecay of the wrong type', { cautiousWeightDecay: 'yes' }, /^options\.cautiousWeightDecay must be true or false, got "yes"$/],
  ['an unknown weight-decay schedule', { weightDecaySchedule: 'cosin' }, /^options\.weightDecaySchedule must be 'lr' or one of 'constant', .* got "cosin"$/],
  ['a weight-decay schedule without its length', { weightDecaySchedule: { name: 'linear' } }, /^options\.weightDecaySchedule\.totalSteps must be a positive integer for 'linear', got undefined$/],
  ['a weight-decay schedule with an lr', { weightDecaySchedule: { name: 'linear', totalSteps: 5, lr: 2 } }, /^options\.weightDecaySchedule\.lr is not an option: the schedule multiplies λ$/],
];

describe('bad options', () => {
  for (const [title, extra, message] of cases) {
    it(title, async () => {
      let error: Error | undefined;
      try {
        await createOptimizer({ params, threads: 2, ...(extra as Partial<OptimizerOptions>) });
      } catch (err) {
        error = err as Error;
      }
      expect(error, 'must throw').to.be.instanceOf(Error);
      expect(error!.message).to.match(message);
      expect(error!.message.split('\n')).to.have.length(1);
    });
  }

  it('an empty model', async () => {
    await expectReject(createOptimizer({ params: {} }), /options\.params is empty: the model has no tensors/);
  });

  it('a tensor name used twice', async () => {
    await expectReject(
      createOptimizer({ params: [['w', new Float32Array(2)], ['w', new Float32Array(3)]] }),
      /options\.params: tensor name "w" is used twice/,
    );
  });

  it('a non-finite initial value names the tensor and element', async () => {
    await expectReject(createOptimizer({ params: { w: Float32Array.of(1, Number.NaN) } }), /options\.params\["w"\]\[1\] is NaN/);
  });

  it('a gradient of the wrong length or name is refused before anything is written', async () => {
    const opt = await createOptimizer({ params, threads: 1 });
    try {
      const before = opt.grads['dense/kernel'].slice();
      await expectReject(opt.step({ 'dense/kernel': new Float32Array(8).fill(1), 'dense/bias': new Float32Array(3) }), /gradient for "dense\/bias" has 3 elements, expected 2/);
      await expectReject(opt.step({ 'dense/kernal': new Float32Array(8) }), /gradient for unknown tensor "dense\/kernal"/);
      expect(opt.grads['dense/kernel'].slice()).to.deep.equal(before);
      expect(opt.globalStep).to.equal(0);
    } finally {
      await opt.close();
    }
  });

  it('step() while a step is running, and after close()', async () => {
    const opt = await createOptimizer({ params, threads: 2, dispatch: 'pool' });
    const first = opt.step();
    await expectReject(opt.step(), /step\(\) called while another step is running/);
    await first;
    await opt.close();
    await opt.close();
    await expectReject(opt.step(), /the optimizer is closed/);
  });
});

