// Non-finite values in training (issue 6, item 3). One training example of faulty-model.mjs has a NaN input,
// so exactly the batches that hold it give a NaN loss and gradient on one replica. With onNonFinite 'skip'
// such a step leaves params, m, v and the step count bitwise as they were, is counted, and the run moves on
// to the next batch (the data position is optimizer step + skipped steps, kept in checkpoints); 'throw'
// stops naming step, replica and example; too many skips in a row stop the run.

import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type TrainConfigInput } from '../src/index.js';
import { checkpointMetadata, readCheckpointHeader } from '../src/api/checkpoint.js';
import { runTraining } from '../src/api/train.js';
import { exampleAt, faultConfig, replicaHolding } from './fixtures/fault-run.js';
import { checkpointFileName } from '../src/checkpoint/checkpoint-store.js';

/** Poisoned example: slot 3 of batch 2, so replica 0; it comes back once per epoch (6 batches). */
const poisoned = exampleAt(2, 3);
const states = ['params', 'm', 'v'] as const;

function skipConfig(over: Partial<TrainConfigInput> = {}): TrainConfigInput {
  return faultConfig({ poison: [poisoned] }, { optimizer: { lr: 0.01, onNonFinite: 'skip', maxConsecutiveSkips: 2 }, ...over });
}

function bits(trainer: Trainer): Buffer[] {
  return states.flatMap((s) => Object.values(trainer.snapshot(s)).map((a) => Buffer.from(a.buffer)));
}

async function expectError(run: () => Promise<unknown>): Promise<Error> {
  try {
    await run();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('non-finite values in training', function () {
  this.timeout(60000);

  it("'skip': exactly the batches holding the NaN example are skipped, bitwise no-ops, and the run moves on to the next batch", async () => {
    const trainer = await Trainer.create({ config: skipConfig(), threads: 2 });
    try {
      const skippedBatches: number[] = [];
      while (trainer.globalStep < 20) {
        const before = bits(trainer);
        const step = trainer.globalStep;
        const batch = trainer.batchIndex;
        const r = await trainer.step();
        expect(r.batch).to.equal(batch);
        expect(r.skipped, `batch ${batch}`).to.equal(replicaHolding(batch, poisoned) >= 0);
        if (!r.skipped) continue;
        skippedBatches.push(batch);
        expect(bits(trainer).every((b, i) => b.equals(before[i])), 'params, m, v unchanged').to.equal(true);
        expect(trainer.globalStep).to.equal(step);
        expect(r.skippedTotal).to.equal(skippedBatches.length);
        expect(r.nonFinite!.replicas.map((x) => [x.replica, x.culprits])).to.deep.equal([[replicaHolding(batch, poisoned), [poisoned]]]);
        expect(r.nonFinite!.replicas[0].examples).to.include(poisoned).and.have.length(8);
        expect(r.nonFinite!.replicas[0].tensor).to.be.a('string');
      }
      // 20 applied steps + the skips: the NaN example is met once per epoch of 6 batches.
      expect(skippedBatches).to.have.length.above(2);
      expect(trainer.skippedSteps).to.equal(skippedBatches.length);
      expect(trainer.batchIndex).to.equal(20 + skippedBatches.length);
      expect(trainer.dataPosition.position).to.equal(16 * (20 + skippedBatches.length));
    } finally {
      await trainer.close();
    }
  });

  it("'throw' (default): the error names step, batch, replica and the NaN example; nothing is applied", async () => {
    const trainer = await Trainer.create({ config: faultConfig({ poison: [poisoned] }), threads: 2 });
    try {
      await trainer.step();
      await trainer.step();
      const before = bits(trainer);
      const error = await expectError(() => trainer.step());
      expect(error.message).to.match(
        new RegExp(`^non-finite loss or gradient at step 3 \\(batch 2\\): replica 0 \\(loss NaN, non-finite gradient in "dense_1/kernel"; training example ${poisoned} alone gives non-finite values; its examples: [\\d, ]*\\b${poisoned}\\b[\\d, ]*\\); the step was not applied`),
      );
      expect(bits(trainer).every((b, i) => b.equals(before[i]))).to.equal(true);
      expect(trainer.globalStep).to.equal(2);
    } finally {
      await trainer.close();
    }
  });

  it('maxConsecutiveSkips skips in a row stop the run with the step and what was non-finite', async () => {
    const trainer = await Trainer.create({ config: faultConfig({ poison: 'all' }, { optimizer: { lr: 0.01, onNonFinite: 'skip', maxConsecutiveSkips: 3 } }), threads: 2 });
    try {
      expect((await trainer.step()).skipped).to.equal(true);
      expect((await trainer.step()).skipped).to.equal(true);
      const error = await expectError(() => trainer.step());
      expect(error.message).to.match(/^3 consecutive steps skipped \(non-finite gradients\) at step 1 \(batch 2\): replica 0 \(loss NaN, .*; replica 1 \(loss NaN, .*\(optimizer\.maxConsecutiveSkips 3\)$/);
      expect(error.message).to.not.include('\n');
      expect(trainer.globalStep).to.equal(0);
    } finally {
      await trainer.close();
    }
  });

  it('the run records each skip in metrics.jsonl and the log, and resumes bitwise from a checkpoint taken after a skip', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-skip-'));
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(skipConfig({ steps: 12 })));
    expect(await runTraining({ configPath, threads: 2, out: join(dir, 'straight'), progress: false, log: () => {} })).to.include({ step: 12, interrupted: false });
    const lines: string[] = [];
    let checks = 0;
    // Stop after 6 steps: batch 2 (step 3) was skipped before the checkpoint.
    const stopped = await runTraining({ configPath, threads: 2, out: join(dir, 'split'), progress: false, log: (l) => lines.push(l), stopSignal: { get stopped() { return ++checks > 7; } } });
    expect(stopped).to.include({ interrupted: true, step: 6 });
    const meta = checkpointMetadata(readCheckpointHeader(join(dir, 'split', checkpointFileName(6))));
    expect(meta.data).to.include({ batch: 7, skippedSteps: 1, consecutiveSkips: 0, position: 7 * 16 });
    expect(lines.filter((l) => l.startsWith('skipped '))).to.deep.equal([lines.find((l) => l.startsWith('skipped step 3 (batch 2): replica 0 (loss NaN'))]);
    const resumed = await runTraining({ resume: join(dir, 'split'), threads: 2, progress: false, log: () => {} });
    expect(resumed).to.include({ step: 12, interrupted: false });
    const read = (run: string) => readFileSync(join(dir, run, checkpointFileName(12)));
    expect(read('split').equals(read('straight')), 'the resumed run ends with the same checkpoint, byte for byte').to.equal(true);
    const metrics = (run: string) => readFileSync(join(dir, run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const skips = metrics('straight').filter((m) => m.skipped);
    expect(skips[0]).to.deep.include({ step: 3, skipped: true, skippedTotal: 1, batch: 2 });
    expect(skips[0].nonFinite).to.deep.equal([{ replica: 0, loss: 'NaN', tensor: 'dense_1/kernel', examples: [poisoned], batchExamples: Array.from({ length: 8 }, (_, i) => exampleAt(2, i)) }]);
    expect(metrics('split').map((m) => [m.step, m.skipped ?? false])).to.deep.equal(metrics('straight').map((m) => [m.step, m.skipped ?? false]));
  });
});
