// The Trainer: data-parallel replicas against a single replica, bitwise determinism, gradient
// accumulation, the wasm embedding gradient, a real loss drop, and bad inputs with one-line errors.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Trainer, type TrainConfigInput } from '../src/index.js';
import { loadConfigFile, parseConfig, runTraining } from '../src/api/train.js';
import { unsortedSegmentSum } from '../src/tfjs/segment-sum.js';
import { loadNames, vocabulary } from '../src/models/char-lm.js';
import type * as TF from '@tensorflow/tfjs-core';
import { initTf, tf } from '../src/tfjs/tf.js';
import { tinyConfig } from './fixtures/tiny-config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function train(config: TrainConfigInput, threads: number): Promise<{ params: Record<string, Float32Array>; losses: number[]; trainer: Trainer }> {
  const trainer = await Trainer.create({ config, threads });
  const losses: number[] = [];
  try {
    while (trainer.globalStep < trainer.config.steps) losses.push((await trainer.step()).loss);
    return { params: trainer.snapshot(), losses, trainer };
  } finally {
    await trainer.close();
  }
}

function maxAbsDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let d = 0;
  for (const name of Object.keys(a)) for (let i = 0; i < a[name].length; i++) d = Math.max(d, Math.abs(a[name][i] - b[name][i]));
  return d;
}

function sameBits(a: Record<string, Float32Array>, b: Record<string, Float32Array>): boolean {
  return Object.keys(a).every((name) => Buffer.compare(Buffer.from(a[name].buffer), Buffer.from(b[name].buffer)) === 0);
}

describe('Trainer: data-parallel replicas', function () {
  this.timeout(60000);

  it('R = 2 replicas × micro-batch b equals R = 1 × batch 2b after 20 steps (float32 summation tolerance)', async () => {
    const two = await train(tinyConfig({ batchSize: 32, replicas: 2 }), 2);
    const one = await train(tinyConfig({ batchSize: 32, replicas: 1 }), 1);
    const d = maxAbsDiff(two.params, one.params);
    expect(d).to.be.below(2e-4);
    expect(sameBits(two.params, one.params)).to.equal(false, 'different reduction orders should not coincide bit for bit (test is too weak)');
    two.losses.forEach((l, i) => expect(l).to.be.closeTo(one.losses[i], 1e-4));
  });

  it('the same R gives bitwise-identical runs, whichever thread runs which replica', async () => {
    const a = await train(tinyConfig({ replicas: 2 }), 2); // one replica per thread, whichever piscina picks
    const c = await train(tinyConfig({ replicas: 2 }), 1); // both replicas on one thread
    expect(sameBits(a.params, c.params)).to.equal(true);
    expect(a.losses).to.deep.equal(c.losses);
  });

  it('gradient accumulation: R = 1 × k = 2 micro-batches matches R = 2 × k = 1', async () => {
    const acc = await train(tinyConfig({ replicas: 1, accumulateSteps: 2 }), 1);
    const par = await train(tinyConfig({ replicas: 2, accumulateSteps: 1 }), 2);
    expect(maxAbsDiff(acc.params, par.params)).to.be.below(2e-4);
  });

  it('the default config: held-out loss falls well below ln(vocabulary) within 150 steps', async () => {
    const config = loadConfigFile(join(root, 'config/char-lm.json'));
    const trainer = await Trainer.create({ config: { ...config, steps: 150 }, threads: 2 });
    try {
      const before = await trainer.evaluate();
      while (trainer.globalStep < 150) await trainer.step();
      const after = await trainer.evaluate();
      const uniform = Math.log(vocabulary(loadNames()).length);
      expect(before).to.be.above(uniform - 0.5);
      expect(after).to.be.below(0.75 * uniform); // ln 28 ≈ 3.33; a bigram model gets ≈ 2.45
      expect(await trainer.sample(5)).to.have.length(5);
    } finally {
      await trainer.close();
    }
  });
});

describe('embedding gradient on the wasm backend', () => {
  it('UnsortedSegmentSum (gather\'s gradient) is registered and matches the cpu backend', async () => {
    expect(await initTf('wasm')).to.equal('wasm');
    const grad = () =>
      tf.tidy(() => {
        const table = tf.variable(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]), true, `emb_${tf.getBackend()}_${Math.random()}`);
        const ids = tf.tensor1d([3, 0, 3, 1], 'int32');
        const w = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
        const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, ids), w)) as TF.Scalar, [table]);
        const g = Array.from(Object.values(grads)[0].dataSync());
        table.dispose();
        return g;
      });
    const onWasm = grad();
    await tf.setBackend('cpu');
    const onCpu = grad();
    await tf.setBackend('wasm');
    // rows: id 0 ← w[1] = (3,4); id 1 ← w[3] = (7,8); id 2 ← nothing; id 3 ← w[0] + w[2] = (1+5, 2+6)
    expect(onWasm).to.deep.equal([3, 4, 7, 8, 0, 0, 6, 8]);
    expect(onWasm).to.deep.equal(onCpu);
  });

  it('unsortedSegmentSum drops out-of-range ids, as TensorFlow does', () => {
    const out = new Float32Array(2);
    unsortedSegmentSum([1, 2, 4, 8], [1, -1, 2, 1], 1, 2, out);
    expect(Array.from(out)).to.deep.equal([0, 9]);
  });
});

describe('Trainer: bad inputs give one-line errors', function () {
  this.timeout(30000);

  const table: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['batch not divisible by the replicas', () => Trainer.create({ config: tinyConfig({ batchSize: 33, replicas: 2 }), threads: 2 }), /batchSize 33 is not divisible by replicas × accumulateSteps = 2 × 1/],
    ['unknown config key', async () => parseConfig({ ...tinyConfig(), lerningRate: 1 }), /^config: unknown key lerningRate$/],
    ['unknown nested key', async () => parseConfig({ ...tinyConfig(), optimizer: { lr: 1, betaz: [0.9, 0.9] } }), /^config: unknown key optimizer\.betaz$/],
    ['wrong type', async () => parseConfig({ ...tinyConfig(), optimizer: { lr: '0.1' } }), /^config: optimizer\.lr: .*expected number/],
    ['missing key', async () => parseConfig({ model: { module: 'char-lm' }, batchSize: 8 }), /^config: steps: /],
    ['model options nested too deep', async () => parseConfig({ ...tinyConfig(), model: { module: 'char-lm', options: { a: JSON.parse(`${'['.repeat(100000)}${']'.repeat(100000)}`) } } }), /^config: model\.options: nested more than 64 levels deep$/],
    ['config file missing', async () => loadConfigFile('/nonexistent/x.json'), /^config \/nonexistent\/x\.json: no such file$/],
    ['model module without loss()', () => Trainer.create({ config: tinyConfig({ model: { module: fileURLToPath(new URL('./fixtures/no-loss-model.js', import.meta.url)) } }), threads: 1 }), /no-loss-model\.js must export a function loss\(\)/],
    ['model module that does not exist', () => Trainer.create({ config: tinyConfig({ model: { module: '/nonexistent/model.mjs' } }), threads: 1 }), /model module file:\/\/\/nonexistent\/model\.mjs could not be imported/],
    ['bad built-in model option', () => Trainer.create({ config: tinyConfig({ model: { module: 'char-lm', options: { hiden: [4] } } }), threads: 1 }), /unknown key model\.options\.hiden/],
  ];
  for (const [what, run, message] of table) {
    it(what, async () => {
      let error: Error | null = null;
      try {
        await run();
      } catch (err) {
        error = err as Error;
      }
      expect(error, 'expected an error').to.be.instanceOf(Error);
      expect(error!.message).to.match(message);
      expect(error!.message).to.not.include('\n');
    });
  }
});

describe('shardtrain train (the job)', function () {
  this.timeout(60000);

  it('writes metrics, checkpoint, loss curve and samples; stops cleanly when asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-run-'));
    const configPath = join(dir, 'tiny.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(configPath, JSON.stringify(tinyConfig({ steps: 30, logEvery: 5, checkpointEvery: 10, evalEvery: 10 })));
    const lines: string[] = [];
    const out = join(dir, 'run');
    const summary = await runTraining({ configPath, threads: 2, out, progress: false, log: (l) => lines.push(l) });
    expect(summary.step).to.equal(30);
    expect(summary.interrupted).to.equal(false);
    expect(summary.samples).to.have.length(10);
    expect(readdirSync(out).sort()).to.deep.equal(['checkpoint-00000010.safetensors', 'checkpoint-00000020.safetensors', 'checkpoint-00000030.safetensors', 'config.json', 'loss.svg', 'metrics.jsonl', 'summary.json']);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => 'loss' in m).map((m) => m.step)).to.deep.equal([5, 10, 15, 20, 25, 30]);
    expect(metrics.filter((m) => 'evalLoss' in m).map((m) => m.step)).to.deep.equal([10, 20, 30]);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).to.match(/^<svg[^>]*>.*<\/svg>$/s);

    // Stop after 4 steps (as Ctrl-C does): a checkpoint at step 4, then resume to the end.
    let checks = 0;
    const stopped = await runTraining({ configPath, threads: 1, out: join(dir, 'stopped'), progress: false, log: () => {}, stopSignal: { get stopped() { return ++checks > 4; } } });
    expect(stopped).to.include({ interrupted: true, step: 4 });
    const resumed = await runTraining({ resume: join(dir, 'stopped'), threads: 1, progress: false, log: () => {} });
    expect(resumed).to.include({ interrupted: false, step: 30, out: join(dir, 'stopped') });
  });

  it('Ctrl-C (SIGINT) finishes the step, writes a checkpoint and exits 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-sigint-'));
    const configPath = join(dir, 'tiny.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(configPath, JSON.stringify(tinyConfig({ steps: 4000 })));
    const child = spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), 'train', '--config', configPath, '--out', join(dir, 'run'), '--threads', '1', '--no-progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (/step \d+\/4000/.test(stdout)) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).to.equal(130);
    const step = /interrupted: checkpoint at step (\d+) written/.exec(stdout)?.[1];
    expect(step, stdout).to.be.a('string');
    expect(existsSync(join(dir, 'run', `checkpoint-${step!.padStart(8, '0')}.safetensors`))).to.equal(true);
  });
});
