// export --to torch and the new weight-decay knobs: none of adamc, tf-sgd-decay, caffe, cautious decay or a
// λ schedule has a torch optimizer, so the weights export and the command says so in one line; a λ set by a
// timescale in epochs is a plain λ, which torch.optim.AdamW takes (the export resolves it from the data set).
// No torch needed: what is checked is shardtrain's side of the export.
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conventions, Trainer, type TrainConfigInput } from '../src/index.js';
import { readSafetensorsHeader } from '../src/checkpoint/safetensors.js';
import { torchOptimizerFor } from '../src/checkpoint/torch-export.js';
import { spawnCli } from './fixtures/fault-run.js';
import { tinyConfig } from './fixtures/tiny-config.js';

describe('export --to torch: the new weight-decay knobs', function () {
  this.timeout(120000);

  it('torchOptimizerFor: AdamW for pytorch and Adam for l2 only while λ is constant and decay is not cautious; none for adamc, tf-sgd-decay, caffe', () => {
    expect(torchOptimizerFor(conventions.pytorch)).to.equal('AdamW');
    expect(torchOptimizerFor(conventions.l2)).to.equal('Adam');
    expect(torchOptimizerFor({ ...conventions.pytorch, cautiousWeightDecay: true })).to.equal(null);
    expect(torchOptimizerFor(conventions.pytorch, false)).to.equal(null);
    expect(torchOptimizerFor(conventions.l2, false)).to.equal(null);
    for (const name of ['adamc', 'tf-sgd-decay', 'caffe'] as const) expect(torchOptimizerFor(conventions[name]), name).to.equal(null);
  });

  async function exported(optimizer: TrainConfigInput['optimizer']): Promise<{ stdout: string; out: string; trainer: Trainer }> {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-torch-wd-'));
    const trainer = await Trainer.create({ config: tinyConfig({ steps: 6, optimizer }), threads: 1 });
    for (let i = 0; i < 2; i++) await trainer.step();
    const checkpoint = join(dir, 'ckpt.safetensors');
    await trainer.saveCheckpoint(checkpoint);
    await trainer.close();
    const out = join(dir, 'x.safetensors');
    const r = await spawnCli(['export', checkpoint, '--to', 'torch', '--out', out]);
    expect(r.code, r.stderr).to.equal(0);
    return { stdout: r.stdout, out, trainer };
  }

  const settings: Array<[TrainConfigInput['optimizer'], string]> = [
    [{ convention: 'adamc', lr: 0.01 }, 'convention adamc'],
    [{ convention: 'tf-sgd-decay', lr: 0.01 }, 'convention tf-sgd-decay'],
    [{ convention: 'caffe', lr: 0.01 }, 'convention caffe'],
    [{ convention: 'pytorch', cautiousWeightDecay: true }, 'convention pytorch with cautiousWeightDecay'],
    [{ convention: 'l2', weightDecaySchedule: 'lr' }, 'convention l2 with a weightDecaySchedule'],
  ];
  for (const [optimizer, setting] of settings) {
    it(`${JSON.stringify(optimizer)}: "${setting} has no torch optimizer…" in one line, weights only`, async () => {
      const { stdout, out } = await exported(optimizer);
      const said = stdout.split('\n').filter((l) => l.includes('torch optimizer') || l.includes('optimizer state'));
      expect(said).to.deep.equal([`${setting} has no torch optimizer: the weights are exported, the optimizer state is not`]);
      const names = [...readSafetensorsHeader(out).tensors.keys()];
      expect(names.some((n) => n.startsWith('optimizer.'))).to.equal(false);
      expect(names).to.include('hidden.0.weight');
    });
  }

  it('a timescale in epochs: AdamW state, with the λ the trainer resolved in every decayed parameter group', async () => {
    const { stdout, out, trainer } = await exported({ convention: 'pytorch', lr: 0.01, excludeFromWeightDecay: 'bert', weightDecayTimescale: { epochs: 2 } });
    expect(stdout).to.include('optimizer state for torch.optim.AdamW');
    const lambda = trainer.optimizer.options.weightDecay;
    expect(lambda).to.be.closeTo(1 / (0.01 * 2 * (trainer.counts.train / 32)), 1e-12);
    const groups = JSON.parse(readSafetensorsHeader(out).metadata.param_groups) as Array<{ weight_decay: number }>;
    expect(new Set(groups.map((g) => g.weight_decay))).to.deep.equal(new Set([0, lambda]));
  });
});
