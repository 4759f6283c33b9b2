// tfjs tensors must not leak (the tfjs engine): every replica thread (and the main thread) holds the same
// number of live tensors after each kind of work (steps, accumulation, evaluation, samples). The shardtrain
// engine makes no tensors: its test (engine-train.test.ts) watches RSS and the threads' heaps instead. The long version of this check
// is `npm run soak` (10,000 steps, RSS as well).

import { expect } from 'chai';
import { Trainer } from '../src/index.js';
import { tf } from '../src/tfjs/tf.js';
import { tinyConfig } from './fixtures/tiny-config.js';

describe('tfjs tensors do not leak', function () {
  this.timeout(60000);

  for (const accumulateSteps of [1, 2]) {
    it(`steps, evaluation and samples leave every thread's tensor count unchanged (accumulateSteps ${accumulateSteps})`, async () => {
      const trainer = await Trainer.create({ config: tinyConfig({ steps: 30, accumulateSteps, engine: 'tfjs' }), threads: 2 });
      try {
        await trainer.step(); // the first step creates what lives for the run (optimizer-free replicas: the variables)
        const before = await trainer.replicaInfo();
        const mainBefore = tf.memory().numTensors;
        expect(before.map((i) => i.threadId)).to.have.lengthOf(2).and.satisfy((ids: number[]) => ids[0] !== ids[1]);
        expect(before.every((i) => i.numTensors > 0)).to.equal(true);
        for (let k = 0; k < 10; k++) await trainer.step();
        await trainer.evaluate();
        await trainer.sample(3);
        const after = await trainer.replicaInfo();
        expect(after.map((i) => [i.threadId, i.numTensors])).to.deep.equal(before.map((i) => [i.threadId, i.numTensors]));
        expect(tf.memory().numTensors).to.equal(mainBefore);
      } finally {
        await trainer.close();
      }
    });
  }

  it('gpt: 1,000 steps, evaluations and samples leave every thread\'s tensor count unchanged', async function () {
    this.timeout(600000);
    // The smallest gpt that still has every part (attention with two heads, the MLP, both LayerNorms, the
    // tied head), so that 1,000 steps take seconds.
    const model = { module: 'gpt', options: { contextLength: 4, embedding: 8, heads: 2, layers: 1, mlpRatio: 1, evalWindows: 4 } };
    const trainer = await Trainer.create({ config: tinyConfig({ model, steps: 1001, batchSize: 2, evalBatch: 4, engine: 'tfjs' }), threads: 2 });
    try {
      await trainer.step();
      const before = await trainer.replicaInfo();
      const mainBefore = tf.memory().numTensors;
      expect(before.every((i) => i.numTensors > 0)).to.equal(true);
      while (trainer.globalStep < 1001) {
        await trainer.step();
        if (trainer.globalStep % 250 === 0) {
          await trainer.evaluate();
          expect((await trainer.sample(1, trainer.globalStep, { tokens: 5 }))[0]).to.have.length(5);
        }
      }
      const after = await trainer.replicaInfo();
      expect(after.map((i) => [i.threadId, i.numTensors])).to.deep.equal(before.map((i) => [i.threadId, i.numTensors]));
      expect(tf.memory().numTensors).to.equal(mainBefore);
    } finally {
      await trainer.close();
    }
  });
});
