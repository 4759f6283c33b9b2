// `--set KEY=VALUE` overrides (train and compare): JSON values where they parse, dotted paths, validated
// like the file, and each problem a one-line message naming the key and the --set it came from.

import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfig } from '../src/api/train.js';
import { parseOverride } from '../src/train/config.js';
import { spawnCli } from './fixtures/fault-run.js';
import { tinyConfig } from './fixtures/tiny-config.js';
import { conventionNames } from '../src/optim/conventions.js';

describe('config overrides (--set)', function () {
  this.timeout(120000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-set-'));
  const file = join(dir, 'tiny.json');
  writeFileSync(file, JSON.stringify(tinyConfig()));

  it('values parse as JSON where they are JSON, else as text', () => {
    const cases: Array<[string, unknown]> = [
      ['a=3e-4', 3e-4],
      ['a=true', true],
      ['a=null', null],
      ['a=[0.9,0.95]', [0.9, 0.95]],
      ['a="text"', 'text'],
      ['a={"x":1}', { x: 1 }],
      ['a=my-run', 'my-run'],
      ['a=', ''],
      ['a=x=y', 'x=y'],
      ['a=[1,', '[1,'],
    ];
    for (const [flag, value] of cases) expect(parseOverride(flag).value, flag).to.deep.equal(value);
    expect(parseOverride('model.options.layers=6').path).to.deep.equal(['model', 'options', 'layers']);
  });

  it('writes into nested objects, creating missing ones, and a later --set wins', () => {
    const c = loadConfigFile(file, ['optimizer.lr=3e-4', 'batchSize=16', 'model.options.hidden=[16,16]', 'optimizer.betas=[0.9,0.95]', 'optimizer.betas.1=0.98', 'name=run-a', 'name=run-b', 'optimizer.schedule.warmupSteps=5']);
    expect(c.optimizer.lr).to.equal(3e-4);
    expect(c.batchSize).to.equal(16);
    expect(c.model.options).to.deep.equal({ contextLength: 3, embedding: 8, hidden: [16, 16] });
    expect(c.optimizer.betas).to.deep.equal([0.9, 0.98]);
    expect(c.name).to.equal('run-b');
    expect(c.optimizer.schedule).to.deep.equal({ name: 'linear', warmupSteps: 5 });
    // A key the file does not have: created (and validated).
    const noOptimizer = tinyConfig();
    delete (noOptimizer as { optimizer?: unknown }).optimizer;
    expect(parseConfig(noOptimizer, 'config', ['optimizer.weightDecay=0.5']).optimizer.weightDecay).to.equal(0.5);
    // The file's own object is not changed.
    const raw = tinyConfig();
    parseConfig(raw, 'config', ['steps=99']);
    expect(raw.steps).to.equal(20);
  });

  const where = `config ${file}`;
  const bad: Array<[string[], string]> = [
    [['optimizer.lrr=1'], `${where} (--set optimizer.lrr=1): unknown key optimizer.lrr`],
    [['colour=blue'], `${where} (--set colour=blue): unknown key colour`],
    [['optimizer.lr=fast'], `${where} (--set optimizer.lr=fast): optimizer.lr: Invalid input: expected number, received string`],
    [['batchSize=0'], `${where} (--set batchSize=0): batchSize: Too small: expected number to be >=1`],
    [['optimizer.betas=[0.9]'], `${where} (--set optimizer.betas=[0.9]): optimizer.betas: Too small: expected array to have >=2 items`],
    [['optimizer={"lr":"x"}'], `${where} (--set optimizer={"lr":"x"}): optimizer.lr: Invalid input: expected number, received string`],
    [['steps=10', 'optimizer.convention=adam'], `${where} (--set optimizer.convention=adam): optimizer.convention: Invalid option: expected one of ${conventionNames.map((n) => `"${n}"`).join('|')}`],
    [['__proto__.steps=1'], `${where} (--set __proto__.steps=1): unknown key __proto__`],
    [['lr'], '--set lr: expected KEY=VALUE (e.g. --set optimizer.lr=3e-4)'],
    [['optimizer..lr=1'], '--set optimizer..lr=1: "optimizer..lr" is not a dotted key path (e.g. model.options.layers)'],
    [['=1'], '--set =1: "" is not a dotted key path (e.g. model.options.layers)'],
    [['steps.max=3'], '--set steps.max=3: steps is 20, not an object to set a key in'],
    [['optimizer.betas=[0.9,0.95]', 'optimizer.betas.3=0.9'], '--set optimizer.betas.3=0.9: optimizer.betas is a list of 2, and "3" is not an index into it'],
    // One past the end appends (model.options.hidden.2=64 adds a layer); betas must stay a pair.
    [['optimizer.betas=[0.9,0.95]', 'optimizer.betas.2=0.9'], `${where} (--set optimizer.betas.2=0.9): optimizer.betas: Too big: expected array to have <=2 items`],
    [['optimizer.betas=[0.9,0.95]', 'optimizer.betas.x=0.9'], '--set optimizer.betas.x=0.9: optimizer.betas is a list of 2, and "x" is not an index into it'],
    // The file has no betas: the path creates an object there, which the schema refuses.
    [['optimizer.betas.1=0.9'], `${where} (--set optimizer.betas.1=0.9): optimizer.betas: Invalid input: expected tuple, received object`],
  ];
  for (const [sets, message] of bad) {
    it(`refuses ${sets.join(' ')} in one line`, () => {
      expect(() => loadConfigFile(file, sets)).to.throw(ConfigError).that.satisfies((e: Error) => {
        expect(e.message).to.equal(message);
        return !e.message.includes('\n');
      });
    });
  }

  it('a problem of the file itself is not blamed on a --set', () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, JSON.stringify({ ...tinyConfig(), logEvery: 'often' }));
    expect(() => loadConfigFile(broken, ['steps=5'])).to.throw(`config ${broken}: logEvery: Invalid input: expected number, received string`);
  });

  it('shardtrain train --set: the run\'s config.json holds the overrides; a bad --set exits 1 with one line, nothing written', async () => {
    const out = join(dir, 'run');
    const ok = await spawnCli(['train', '--config', file, '--out', out, '--threads', '1', '--no-progress', '--set', 'steps=3', '--set', 'optimizer.lr=0.002', '--set', 'name=from-set']);
    expect(ok.code, ok.stderr).to.equal(0);
    const written = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { steps: number; name: string; optimizer: { lr: number } };
    expect([written.steps, written.name, written.optimizer.lr]).to.deep.equal([3, 'from-set', 0.002]);

    const badOut = join(dir, 'bad-run');
    const bad = await spawnCli(['train', '--config', file, '--out', badOut, '--threads', '1', '--no-progress', '--set', 'optimizer.lrr=1']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.equal(`shardtrain train: ${where} (--set optimizer.lrr=1): unknown key optimizer.lrr\n`);
    expect(() => readFileSync(join(badOut, 'config.json'))).to.throw(/ENOENT/);
  });

  it('shardtrain compare --set is validated the same way', async () => {
    const r = await spawnCli(['compare', '--config', file, '--out', join(dir, 'cmp'), '--set', 'batchSize=-1', '--no-progress']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`shardtrain compare: ${where} (--set batchSize=-1): batchSize: Too small: expected number to be >=1\n`);
  });
});
