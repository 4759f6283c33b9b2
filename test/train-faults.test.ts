// Worker failures in training (issue 6, item 2): a replica whose model code throws, exits its thread, runs
// out of memory or never answers. Each must stop the run within 5 s with a one-line error naming the worker
// thread, the replica and the step; leave params, m and v untouched (the optimizer step never ran) and the
// last checkpoint intact; and end every thread (the CLI process exits with code 1, nothing left running).

import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepTimeoutError, Trainer, type TrainConfigInput } from '../src/index.js';
import { checkpointMetadata, readCheckpointHeader } from '../src/api/checkpoint.js';
import { parseConfig } from '../src/api/train.js';
import { describeTask } from '../src/parallel/worker-protocol.js';
import { withHeapHint } from '../src/train/tfjs-replica.js';
import { exampleAt, faultConfig, osThreads, runCli, tempFiles } from './fixtures/fault-run.js';
import { checkpointFileName } from '../src/checkpoint/checkpoint-store.js';

type Fault = 'throw' | 'exit' | 'oom' | 'spin';

/** The fault fires in global batch 4 (step 5), replica 1: the sentinel example is in its half of the batch. */
const kFaultBatch = 4;
const kFaultReplica = 1;

const faults: ReadonlyArray<{ fault: Fault; over: Partial<TrainConfigInput>; message: RegExp }> = [
  { fault: 'throw', over: {}, message: /^worker thread \d+ \(replica 1, step 5\): the model module failed on purpose$/ },
  { fault: 'exit', over: {}, message: /^worker thread \d+ died running replica 1, step 5: worker exited with code: 3$/ },
  {
    fault: 'oom',
    over: { workerMemoryMb: 64 },
    message: /^worker thread \d+ died running replica 1, step 5: Worker terminated due to reaching memory limit: JS heap out of memory \(workerMemoryMb 64\)$/,
  },
  {
    fault: 'spin',
    over: { stepTimeoutSec: 1 },
    message: /^step 5: no answer within 1 s \(stepTimeoutSec\) from replica 1 \(worker thread \d+\); the worker threads were stopped$/,
  },
];

function configFor(fault: Fault, markFile: string, over: Partial<TrainConfigInput>): TrainConfigInput {
  const sentinel = exampleAt(kFaultBatch, kFaultReplica * 8 + 3);
  return faultConfig({ sentinel, fault, markFile }, over);
}

function sameBits(a: Record<string, Float32Array>, b: Record<string, Float32Array>): boolean {
  return Object.keys(a).every((n) => Buffer.from(a[n].buffer).equals(Buffer.from(b[n].buffer)));
}

describe('worker failures in training', function () {
  this.timeout(60000);

  it('an endless loop during evaluation: evaluate() fails within its deadline naming the part, and every thread ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-eval-spin-'));
    const mark = join(dir, 'mark');
    const threadsBefore = osThreads();
    // 24 held-out examples on 2 threads: 12 per part, 8 per replica and step, so 2 steps' worth: a 2 s deadline.
    const trainer = await Trainer.create({ config: faultConfig({ evalSentinel: 5, fault: 'spin', markFile: mark }, { stepTimeoutSec: 1 }), threads: 2 });
    const pool = trainer.optimizer.pool;
    await trainer.step();
    await trainer.step();
    let error: Error | null = null;
    let failedAt = 0;
    try {
      await trainer.evaluate();
    } catch (err) {
      error = err as Error;
      failedAt = Date.now();
    }
    expect(error, 'expected evaluate() to fail').to.be.instanceOf(StepTimeoutError);
    expect(error!.message).to.equal("evaluation at step 2: no answer within 2 s (stepTimeoutSec × 2 steps' worth of held-out examples) from evaluation part 0; the worker threads were stopped");
    expect(failedAt - Number(readFileSync(mark, 'utf8'))).to.be.below(5000);
    expect(pool.closed).to.equal(true);
    await trainer.close();
    if (!Number.isNaN(threadsBefore)) expect(osThreads(), 'OS threads after close()').to.be.at.most(threadsBefore);
  });

  for (const { fault, over, message } of faults) {
    it(`${fault}: step() fails within 5 s naming thread, replica and step; params, m, v untouched; close() ends every thread`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `shardtrain-${fault}-`));
      const mark = join(dir, 'mark');
      const threadsBefore = osThreads();
      const trainer = await Trainer.create({ config: configFor(fault, mark, over), threads: 2 });
      if (!Number.isNaN(threadsBefore)) expect(osThreads(), 'OS threads with the pool').to.be.at.least(threadsBefore + 2);
      const pool = trainer.optimizer.pool;
      let error: Error | null = null;
      let failedAt = 0;
      let before: Array<Record<string, Float32Array>> = [];
      try {
        while (trainer.globalStep < 20) {
          before = (['params', 'm', 'v'] as const).map((s) => trainer.snapshot(s));
          await trainer.step();
        }
      } catch (err) {
        error = err as Error;
        failedAt = Date.now();
      }
      expect(error, 'expected the step to fail').to.be.instanceOf(Error);
      expect(error!.message).to.match(message);
      const stopMs = failedAt - Number(readFileSync(mark, 'utf8'));
      expect(stopMs).to.be.below(5000);
      expect(trainer.globalStep).to.equal(kFaultBatch);
      // The shared memories outlive the pool (a timeout has already destroyed it): compare them bit for bit.
      (['params', 'm', 'v'] as const).forEach((s, i) => expect(sameBits(trainer.snapshot(s), before[i]), s).to.equal(true));
      await trainer.close();
      expect(pool.closed).to.equal(true);
      if (!Number.isNaN(threadsBefore)) expect(osThreads(), 'OS threads after close()').to.be.at.most(threadsBefore);
    });
  }

  for (const { fault, over, message } of faults) {
    it(`${fault}: the CLI exits 1 within 5 s with one stderr line, the step-4 checkpoint intact and nothing for step 5`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `shardtrain-cli-${fault}-`));
      const mark = join(dir, 'mark');
      const result = await runCli(dir, configFor(fault, mark, { ...over, checkpointEvery: 2 }));
      const run = join(dir, 'run');
      expect(result.code).to.equal(1);
      const lines = result.stderr.trim().split('\n');
      expect(lines, result.stderr).to.have.length(1);
      expect(lines[0].replace(/^shardtrain train: /, '')).to.match(message);
      const stopMs = result.exitedAt - Number(readFileSync(mark, 'utf8'));
      expect(stopMs).to.be.below(5000);
      expect(checkpointMetadata(readCheckpointHeader(join(run, checkpointFileName(4)))).step).to.equal(4);
      expect(tempFiles(run)).to.deep.equal([]);
      expect(existsSync(join(run, 'summary.json'))).to.equal(false);
      const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number });
      expect(metrics.map((m) => m.step)).to.deep.equal([1, 2, 3, 4]);
      expect(readdirSync(run).sort()).to.deep.equal([checkpointFileName(2), checkpointFileName(4), 'config.json', 'metrics.jsonl']);
    });
  }

  it('a model module that fails only in a worker: Trainer.create fails naming the thread, and leaves no thread running', async () => {
    const threadsBefore = osThreads();
    let error: Error | null = null;
    try {
      await Trainer.create({ config: faultConfig({ failInWorker: true }), threads: 2 });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/^worker thread \d+ \(loading the model module\): createModel failed in a worker on purpose$/);
    if (!Number.isNaN(threadsBefore)) expect(osThreads()).to.be.at.most(threadsBefore);
  });

  it('replica tasks describe themselves as "replica r, step s"; unlabelled extension tasks by name', () => {
    expect(describeTask({ kind: 'ext', extension: 'x', payload: null, label: 'replica 1, step 7' })).to.equal('replica 1, step 7');
    expect(describeTask({ kind: 'ext', extension: 'x', payload: null })).to.equal('extension x');
  });

  describe('bad fault-handling settings give one-line errors naming the key', () => {
    const table: Array<[string, Partial<TrainConfigInput>, RegExp]> = [
      ['workerMemoryMb below 32', { workerMemoryMb: 8 }, /^config: workerMemoryMb: .*>=\s?32/],
      ['workerMemoryMb not an integer', { workerMemoryMb: 100.5 }, /^config: workerMemoryMb: .*int/],
      ['stepTimeoutSec zero', { stepTimeoutSec: 0 }, /^config: stepTimeoutSec: .*>\s?0/],
      ['onNonFinite ignore (not offered for training)', { optimizer: { onNonFinite: 'ignore' as 'skip' } }, /^config: optimizer\.onNonFinite: /],
      ['maxConsecutiveSkips zero', { optimizer: { maxConsecutiveSkips: 0 } }, /^config: optimizer\.maxConsecutiveSkips: .*>=\s?1/],
    ];
    for (const [what, over, pattern] of table) {
      it(what, () => {
        expect(() => parseConfig(faultConfig({}, over))).to.throw(pattern);
      });
    }
  });
});

describe('a wasm failure inside tfjs names the replica heap', () => {
  it('past 2 GiB: the message says why and what to do; below: the heap size; other errors unchanged', () => {
    const trap = new WebAssembly.RuntimeError('memory access out of bounds');
    const big = withHeapHint(trap, 2.5 * 2 ** 30) as Error;
    expect(big.message).to.equal("memory access out of bounds; the replica's tfjs wasm heap is 2.50 GiB, past the 2 GiB where tfjs's own kernels fail: a smaller micro-batch (accumulateSteps) keeps it down");
    expect(big.cause).to.equal(trap);
    expect((withHeapHint(new Error('Aborted(). Build with -sASSERTIONS for more info.'), 2 ** 30) as Error).message).to.equal("Aborted(). Build with -sASSERTIONS for more info. (the replica's tfjs wasm heap is 1.00 GiB)");
    const mine = new Error('the model module failed on purpose');
    expect(withHeapHint(mine, 3 * 2 ** 30)).to.equal(mine);
    expect(withHeapHint(trap, 0), 'cpu backend: no wasm heap to name').to.equal(trap);
  });
});
