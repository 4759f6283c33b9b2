// The new weight-decay keys of a training config: how they reach the optimizer (epochs → iterations from the
// data set size and the global batch, the λ schedule's length), and the bad ones as one-line messages.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOptimizer } from '../src/index.js';
import { optimizerOptionsFromConfig, parseConfig, runTraining } from '../src/api/train.js';
import { tinyConfig } from './fixtures/tiny-config.js';

describe('weight-decay keys in a config', () => {
  it('weightDecayTimescale in epochs becomes { epochs, iterationsPerEpoch = N/B }, and λ = B/(lr·τ·N)', async () => {
    // 1000 training examples in global batches of 32: M = 31.25 steps per epoch; τ = 4 epochs = 125 steps;
    // pytorch's rate at the peak of a linear schedule is lr = 0.01 → λ = 1/(0.01·125) = 0.8.
    const config = parseConfig(tinyConfig({ optimizer: { lr: 0.01, schedule: { name: 'linear', warmupSteps: 3 }, weightDecayTimescale: { epochs: 4 } } }));
    expect(config.optimizer.weightDecay).to.equal(undefined); // no default λ next to a timescale
    const options = optimizerOptionsFromConfig(config, { train: 1000 });
    expect(options.weightDecayTimescale).to.deep.equal({ epochs: 4, iterationsPerEpoch: 31.25 });
    const opt = await createOptimizer({ ...options, params: { w: new Float32Array(3) }, threads: 1 });
    try {
      expect(opt.options.weightDecayTimescale).to.include({ iterations: 125, epochs: 4, iterationsPerEpoch: 31.25, peakRate: 0.01 });
      expect(opt.options.weightDecay).to.be.closeTo(0.8, 1e-15);
      expect(opt.decayTable[0].weightDecay).to.equal(opt.options.weightDecay);
    } finally {
      await opt.close();
    }
  });

  it('without the data set size, a timescale in epochs is refused by the optimizer in one line; in iterations it needs none', async () => {
    const epochs = optimizerOptionsFromConfig(parseConfig(tinyConfig({ optimizer: { weightDecayTimescale: { epochs: 4 } } })));
    await createOptimizer({ ...epochs, params: { w: new Float32Array(3) }, threads: 1 }).then(
      () => expect.fail('must throw'),
      (err: Error) => expect(err.message).to.match(/^options\.weightDecayTimescale\.epochs needs iterationsPerEpoch \(training examples \/ global batch\)[^\n]*$/),
    );
    const iterations = optimizerOptionsFromConfig(parseConfig(tinyConfig({ optimizer: { weightDecayTimescale: { iterations: 200 } } })));
    expect(iterations.weightDecayTimescale).to.deep.equal({ iterations: 200 });
  });

  it("weightDecaySchedule: a name or an object gets the run's steps as totalSteps, 'lr' passes as it is; cautiousWeightDecay passes", () => {
    const of = (weightDecaySchedule: unknown) => optimizerOptionsFromConfig(parseConfig(tinyConfig({ steps: 40, optimizer: { weightDecaySchedule, cautiousWeightDecay: true } as never })));
    expect(of('cosine').weightDecaySchedule).to.deep.equal({ name: 'cosine', totalSteps: 40 });
    expect(of({ name: 'linear', warmupSteps: 4 }).weightDecaySchedule).to.deep.equal({ name: 'linear', warmupSteps: 4, totalSteps: 40 });
    expect(of({ name: 'linear', totalSteps: 10 }).weightDecaySchedule).to.deep.equal({ name: 'linear', totalSteps: 10 });
    expect(of('lr').weightDecaySchedule).to.equal('lr');
    expect(of('lr').cautiousWeightDecay).to.equal(true);
    expect(optimizerOptionsFromConfig(parseConfig(tinyConfig())).weightDecay).to.equal(0.01); // the default λ, as before
  });

  // [optimizer keys, message]: zod's one line, naming the key.
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ weightDecayTimescale: { epochs: -2 } }, /^config: optimizer\.weightDecayTimescale\.epochs: Too small: expected number to be >0$/],
    [{ weightDecayTimescale: { iterations: 0 } }, /^config: optimizer\.weightDecayTimescale\.iterations: Too small: expected number to be >0$/],
    [{ weightDecayTimescale: { epochs: 2, iterations: 3 } }, /^config: optimizer\.weightDecayTimescale: give τ in one unit: \{ "epochs": τ \} or \{ "iterations": τ \}$/],
    [{ weightDecayTimescale: {} }, /^config: optimizer\.weightDecayTimescale: give τ in one unit/],
    [{ weightDecayTimescale: { epoch: 2 } }, /^config: unknown key optimizer\.weightDecayTimescale\.epoch$/],
    [{ weightDecay: 0.1, weightDecayTimescale: { epochs: 2 } }, /^config: optimizer\.weightDecayTimescale: weightDecay and weightDecayTimescale both set λ: give one of them$/],
    [{ weightDecaySchedule: 'cosin' }, /^config: optimizer\.weightDecaySchedule: /],
    [{ cautiousWeightDecay: 'yes' }, /^config: optimizer\.cautiousWeightDecay: Invalid input: expected boolean, received string$/],
  ];
  for (const [optimizer, message] of bad) {
    it(`${JSON.stringify(optimizer)} → ${message.source.slice(1, 70)}…`, () => {
      expect(() => parseConfig(tinyConfig({ optimizer: optimizer as never }))).to.throw(message);
    });
  }

  it('train: a timescale in epochs is resolved from the data set, and the run prints the λ it gives in one line at the start', async function () {
    this.timeout(120000);
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-timescale-'));
    const configPath = join(dir, 'tiny.json');
    writeFileSync(configPath, JSON.stringify(tinyConfig({ steps: 4, samples: 0, optimizer: { lr: 0.01, schedule: { name: 'linear', warmupSteps: 1 }, weightDecayTimescale: { epochs: 3 } } })));
    const lines: string[] = [];
    await runTraining({ configPath, out: join(dir, 'run'), threads: 1, progress: false, log: (l) => lines.push(l) });
    const note = lines.filter((l) => l.startsWith('weight decay from its timescale'));
    expect(note).to.have.length(1);
    // N from the run's first line; M = N/32, τ_iter = 3·M, λ = 1/(0.01·τ_iter) (the line prints 4 digits).
    const N = Number(/ (\d+) training \//.exec(lines.find((l) => l.startsWith('shardtrain: '))!)![1]);
    const m = /^weight decay from its timescale: τ = 3 epochs × ([\d.]+) iterations per epoch = ([\d.]+) iterations at peak lr 0\.01 → λ = 1\/\(0\.01 × ([\d.]+)\) = ([\d.e-]+)$/.exec(note[0]);
    expect(m, note[0]).to.not.equal(null);
    const [perEpoch, iterations, shown, lambda] = m!.slice(1).map(Number);
    const near = (x: number, want: number) => expect(x).to.be.closeTo(want, 5e-4 * want);
    near(perEpoch, N / 32);
    near(iterations, (3 * N) / 32);
    near(shown, (3 * N) / 32);
    near(lambda, 1 / ((0.01 * 3 * N) / 32));
    expect(lines.findIndex((l) => l.startsWith('weight decay'))).to.be.below(lines.findIndex((l) => l.startsWith('done:')));
  });
});
