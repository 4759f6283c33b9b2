// The checkpoint as one object (src/checkpoint/open.ts), opened and verified once, through what resume,
// sample, export and inspect each take from it: metadata and config, the tensors checked against a model,
// the values read into the shard memories, one tensor; and that a damaged file is refused when opened.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer } from '../src/index.js';
import { Checkpoint, CheckpointError, checkpointFileName, readCheckpointHeader, resolveCheckpoint } from '../src/api/checkpoint.js';
import { checkpointConfig, parseConfig, sampleFromCheckpoint } from '../src/api/train.js';
import { exportToTorch } from '../src/train/export.js';
import { inspectCheckpoint } from '../src/cli/inspect.js';
import { tinyConfig } from './fixtures/tiny-config.js';

describe('a checkpoint is one object', function () {
  this.timeout(120000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-ckobj-'));
  const run = join(dir, 'run');
  mkdirSync(run);
  const path = join(run, checkpointFileName(4));
  const config = tinyConfig({ steps: 8 });
  let params: Record<string, Float32Array> = {};

  before(async () => {
    const t = await Trainer.create({ config, threads: 1 });
    try {
      for (let i = 0; i < 4; i++) await t.step();
      await t.saveCheckpoint(path);
      params = t.snapshot('params');
    } finally {
      await t.close();
    }
  });

  it('opens once: metadata, config (validated by train\'s rules, with --set), the model\'s tensors in file order, one tensor', () => {
    const ck = Checkpoint.open(path, 4);
    expect(ck.verified).to.equal(true);
    expect(ck.step).to.equal(4);
    expect(ck.metadata).to.include({ step: 4, convention: 'pytorch', format: 'shardtrain-2' });
    expect(checkpointConfig(ck)).to.deep.equal(parseConfig(config));
    expect(checkpointConfig(ck, ['steps=9']).steps).to.equal(9);
    expect(() => checkpointConfig(ck, ['steps=x'])).to.throw(`checkpoint ${path} (__metadata__.config) (--set steps=x): steps: Invalid input: expected number, received string`);
    expect(ck.tensors.map((t) => t.name)).to.deep.equal(Object.keys(params));
    for (const [name, values] of Object.entries(params)) expect(Buffer.from(ck.readTensor(name).buffer).equals(Buffer.from(values.buffer)), name).to.equal(true);
    expect(ck.checksums()).to.equal('ok');
  });

  it('checks a model\'s tensors and reads into views; a file of another model is refused before anything is read', () => {
    const ck = Checkpoint.open(path);
    const specs = ck.tensors;
    const views = Object.fromEntries(specs.map((t) => [t.name, new Float32Array(t.size).fill(Number.NaN)]));
    ck.check(specs, ['params', 'm', 'v']); // the whole file: params and Adam's moments
    ck.readInto(specs, { params: views });
    for (const [name, values] of Object.entries(params)) expect(Buffer.from(views[name].buffer).equals(Buffer.from(values.buffer)), name).to.equal(true);
    const other = specs.map((t, i) => (i === 0 ? { ...t, shape: [t.shape[0] + 1, ...t.shape.slice(1)] } : t));
    expect(() => ck.check(other, ['params', 'm', 'v'])).to.throw(CheckpointError, `checkpoint ${path}: tensor "${specs[0].name}" has shape [${specs[0].shape}], the model has [${other[0].shape}]`);
    expect(() => Checkpoint.open(path, 5)).to.throw(CheckpointError, `checkpoint ${path}: holds step 4, its name says 5`);
  });

  it('resume takes the object as it takes the path; sample and export find it in a run directory', async () => {
    const ck = resolveCheckpoint(run, () => expect.fail('no warning expected'), '');
    expect(ck.path).to.equal(path);
    const [a, b] = [await Trainer.create({ config, threads: 1, resume: ck }), await Trainer.create({ config, threads: 1, resume: path })];
    try {
      expect(a.globalStep).to.equal(4);
      for (const state of ['params', 'm', 'v'] as const) {
        const [x, y] = [a.snapshot(state), b.snapshot(state)];
        for (const name of Object.keys(params)) expect(Buffer.from(x[name].buffer).equals(Buffer.from(y[name].buffer)), `${state} ${name}`).to.equal(true);
      }
    } finally {
      await a.close();
      await b.close();
    }
    const s = await sampleFromCheckpoint({ source: run, count: 2, seed: 3 });
    expect(s).to.include({ checkpoint: path, step: 4 });
    expect(s.samples).to.have.length(2);
    const r = await exportToTorch(run, join(dir, 'export.safetensors'), () => expect.fail('no warning expected'));
    expect(r).to.include({ checkpoint: path, step: 4, tensors: Object.keys(params).length });
  });

  it('a damaged file: open refuses it in one line, examine (inspect) still lists it and says what is wrong', () => {
    const damaged = join(dir, 'damaged.safetensors');
    const bytes = readFileSync(path);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(damaged, bytes);
    expect(() => Checkpoint.open(damaged)).to.throw(CheckpointError, /^checkpoint \S+damaged\.safetensors: data checksum mismatch/);
    const examined = Checkpoint.examine(readCheckpointHeader(damaged));
    expect(examined.verified).to.equal(false);
    expect(examined.checksums()).to.match(/^data checksum mismatch/);
    expect(inspectCheckpoint(damaged).split('\n')[2]).to.match(/^checksums data checksum mismatch/);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));
});
