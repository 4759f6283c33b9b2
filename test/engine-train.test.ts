// Training on shardtrain's engine through the Trainer: which engine ran (and that tfjs never loaded), the same
// bits for every thread count at fixed replicas (teams of 1, 2, 3 threads) and for more replicas than threads,
// checkpoints that load in either engine, a kernel trap and a dying team member reaching step() as one line
// with every thread ended, the memory plan, and flat memory over 1,000 steps.

import { expect } from 'chai';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type TrainConfigInput } from '../src/index.js';
import { tf } from '../src/tfjs/tf.js';
import { expectReject } from './reference.js';
import { tinyConfig, tinyGptConfig } from './fixtures/tiny-config.js';
import { root, spawnCli } from './fixtures/fault-run.js';

const gpt = (over: Partial<TrainConfigInput> = {}) => tinyGptConfig({ steps: 6, ...over });

async function train(config: TrainConfigInput, threads: number, steps: number): Promise<{ bits: string; losses: number[]; trainer: Trainer }> {
  const trainer = await Trainer.create({ config, threads });
  const losses: number[] = [];
  try {
    for (let i = 0; i < steps; i++) losses.push((await trainer.step()).loss);
    const snap = trainer.snapshot();
    const m = trainer.snapshot('m');
    const bits = Object.keys(snap).map((k) => Buffer.from(snap[k].buffer).toString('hex') + Buffer.from(m[k].buffer).toString('hex')).join('');
    return { bits, losses, trainer };
  } finally {
    await trainer.close();
  }
}

describe('shardtrain engine: training', function () {
  this.timeout(180000);

  it('built-in models run on it by default, tfjs never loads on the main thread, and every thread ran passes', async () => {
    const trainer = await Trainer.create({ config: gpt(), threads: 2 });
    try {
      expect(trainer.engine.kind).to.equal('shardtrain');
      await trainer.step();
      await trainer.evaluate();
      const infos = await trainer.replicaInfo();
      expect(infos.map((i) => i.backend)).to.deep.equal(['shardtrain', 'shardtrain']);
      expect(infos.every((i) => (i.passes ?? 0) > 0), JSON.stringify(infos)).to.equal(true);
      // tfjs's bindings stay undefined until someone calls initTf(): nobody did in this process's main thread
      // unless another test file did, so only its absence proves something; its presence is checked below.
      expect(trainer.engine.description).to.equal('engine shardtrain');
    } finally {
      await trainer.close();
    }
    const tfjs = await Trainer.create({ config: gpt({ engine: 'tfjs' }), threads: 2 });
    try {
      expect(tfjs.engine.kind).to.equal('tfjs');
      await tfjs.step();
      const infos = await tfjs.replicaInfo();
      expect(infos.every((i) => i.backend === 'wasm' && i.passes === undefined && i.numTensors > 0)).to.equal(true);
      expect(tf).to.not.equal(undefined);
    } finally {
      await tfjs.close();
    }
  });

  for (const [name, config] of [['gpt', gpt()], ['char-lm', tinyConfig({ steps: 6 })]] as const) {
    it(`${name}: one replica on 1, 2 and 3 threads gives the same bits (params and m after 6 steps)`, async () => {
      const runs = [];
      for (const threads of [1, 2, 3]) runs.push(await train({ ...config, replicas: 1 }, threads, 6));
      expect(runs[1].bits).to.equal(runs[0].bits);
      expect(runs[2].bits).to.equal(runs[0].bits);
    });

    it(`${name}: two replicas on 2 threads (teams of one), on 3 (a team of two and one) and on 1 (taking turns) give the same bits`, async () => {
      const runs = [];
      for (const threads of [2, 3, 1]) runs.push(await train({ ...config, replicas: 2 }, threads, 6));
      expect(runs[1].bits).to.equal(runs[0].bits);
      expect(runs[2].bits).to.equal(runs[0].bits);
    });
  }

  it('a checkpoint of either engine resumes on the other: the next step gives the same loss within float32', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-engines-'));
    for (const [from, to] of [['shardtrain', 'tfjs'], ['tfjs', 'shardtrain']] as const) {
      const path = join(dir, `${from}.safetensors`);
      const a = await Trainer.create({ config: gpt({ engine: from }), threads: 2 });
      let next: number;
      try {
        for (let i = 0; i < 3; i++) await a.step();
        await a.saveCheckpoint(path);
        next = (await a.step()).loss;
      } finally {
        await a.close();
      }
      const b = await Trainer.create({ config: gpt({ engine: to }), threads: 2, resume: path });
      try {
        expect(b.globalStep).to.equal(3);
        const loss = (await b.step()).loss;
        expect(Math.abs(loss - next), `${from} → ${to}: ${next} vs ${loss}`).to.be.below(1e-5 * next);
      } finally {
        await b.close();
      }
    }
  });

  it('a wasm trap inside a layer fails the step in one line naming the thread, replica, step and layer; params untouched; every thread ends', async () => {
    const trainer = await Trainer.create({ config: gpt({ replicas: 1 }), threads: 2, engineFault: { phase: 'block_0/attn forward', member: 1, batch: 1, how: 'trap' } });
    try {
      await trainer.step();
      const before = trainer.snapshot();
      const err = await expectReject(trainer.step(), /^worker thread \d+ \(replica 0, thread 2 of 2, step 2\): block_0\/attn forward: memory access out of bounds$/);
      expect(err.message).to.not.include('\n');
      expect(trainer.snapshot()).to.deep.equal(before);
      expect(trainer.globalStep).to.equal(1);
    } finally {
      await trainer.close();
    }
  });

  it('a team member whose thread exits mid-step: the step fails in one line, the other member is released, close() ends every thread', async () => {
    const trainer = await Trainer.create({ config: gpt({ replicas: 1 }), threads: 2, engineFault: { phase: 'block_0/mlp/fc forward', member: 0, batch: 0, how: 'exit' } });
    const started = Date.now();
    try {
      await expectReject(trainer.step(), /^worker thread \d+ died running replica 0(, thread 1 of 2)?, step 1: worker exited with code: 3$/);
      expect(Date.now() - started).to.be.below(20000);
    } finally {
      await trainer.close();
    }
  });

  it('the memory plan: printed by the run, a micro-batch past 4 GiB or past the machine refused in one line naming the figure and the remedy', async () => {
    const trainer = await Trainer.create({ config: gpt(), threads: 2 });
    try {
      expect(trainer.engine.planLine).to.match(/^memory plan: shared states [\d.]+ KiB \([\d.]+ k params × 20 B: params, m, v, gradient slots\) \+ 2 arenas × [\d.]+ MiB \(params .*\) \+ data [\d.]+ MiB \+ 3 threads × [\d.]+ MiB ≈ [\d.]+ MiB of [\d.]+ GiB available$/);
    } finally {
      await trainer.close();
    }
    const huge = gpt({ batchSize: 4096, model: { module: 'gpt', options: { contextLength: 512, embedding: 64, heads: 4, layers: 4, evalWindows: 4 } } });
    await expectReject(Trainer.create({ config: huge, threads: 2 }), /^config: replica 0's arena would take [\d.]+ GiB \(its train pass\), past the 4 GiB a WebAssembly memory can hold: use a smaller micro-batch \(accumulateSteps\), fewer replicas, or a shorter context$/);
    const past = gpt({ batchSize: 96, accumulateSteps: 8, replicas: 12, threads: 12, model: { module: 'gpt', options: { contextLength: 1024, embedding: 768, heads: 12, layers: 12, evalWindows: 4 } } });
    await expectReject(Trainer.create({ config: past, threads: 12 }), /^config: the run needs about [\d.]+ GiB and this machine has [\d.]+ GiB available \(shared states .*\): use a smaller micro-batch \(accumulateSteps\), fewer replicas, or a shorter context$/);
  });

  it('train --dry-run prints the plan in one line and touches nothing; a plan that cannot fit exits 1 with the one-line refusal', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'shardtrain-dry-'));
    const ok = await spawnCli(['train', '--config', join(root, 'config/gpt-sotu.json'), '--dry-run', '--threads', '2', '--out', join(cwd, 'run')]);
    expect(ok.code).to.equal(0);
    expect(ok.stderr).to.equal('');
    expect(ok.stdout).to.match(/^memory plan: shared states [\d.]+ MiB \(1\.37 M params × 20 B: params, m, v, gradient slots\) \+ 2 arenas × [\d.]+ MiB .* available\n$/);
    expect(existsSync(join(cwd, 'run'))).to.equal(false);
    const bad = await spawnCli(['train', '--config', join(root, 'config/gpt2-small.json'), '--dry-run', '--set', 'accumulateSteps=1']);
    expect(bad.code).to.equal(1);
    expect(bad.stdout).to.equal('');
    expect(bad.stderr).to.match(/^shardtrain train: config .*gpt2-small\.json: replica 0's arena would take [\d.]+ GiB \(its train pass\), past the 4 GiB a WebAssembly memory can hold: use a smaller micro-batch \(accumulateSteps\), fewer replicas, or a shorter context\n$/);
  });

  it('1,000 steps with evaluations and samples: the process RSS and every thread\'s heap stay flat', async function () {
    this.timeout(600000);
    const model = { module: 'gpt', options: { contextLength: 4, embedding: 8, heads: 2, layers: 1, mlpRatio: 1, evalWindows: 4 } };
    const trainer = await Trainer.create({ config: tinyConfig({ model, steps: 1001, batchSize: 2, evalBatch: 4 }), threads: 2 });
    try {
      for (let i = 0; i < 50; i++) await trainer.step();
      await trainer.evaluate();
      await trainer.sample(1, 1, { tokens: 5 });
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      const heaps0 = (await trainer.replicaInfo()).map((i) => i.heapUsedBytes);
      while (trainer.globalStep < 1001) {
        await trainer.step();
        if (trainer.globalStep % 250 === 0) {
          await trainer.evaluate();
          expect((await trainer.sample(1, trainer.globalStep, { tokens: 5 }))[0]).to.have.length(5);
        }
      }
      const rss1 = process.memoryUsage().rss;
      const heaps1 = (await trainer.replicaInfo()).map((i) => i.heapUsedBytes);
      // V8's heaps breathe by a few MB between collections; a leak of one small array per step would be more.
      expect(rss1 - rss0, `RSS ${rss0} → ${rss1}`).to.be.below(40 * 2 ** 20);
      heaps1.forEach((h, i) => expect(h - heaps0[i], `thread ${i} heap ${heaps0[i]} → ${h}`).to.be.below(16 * 2 ** 20));
    } finally {
      await trainer.close();
    }
  });
});
