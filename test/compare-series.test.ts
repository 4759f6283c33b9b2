// `shardtrain compare --conventions pytorch,pytorch+cautious`: a convention with cautious weight decay as a
// series of its own, paired by seed with the plain convention in the same grid. What is checked: the runs of
// the "+cautious" series are the runs of the convention with `optimizer.cautiousWeightDecay: true` (the same
// bits as a compare of that config), they equal the plain series at λ = 0 (nothing to mask) and differ from it
// at λ > 0 (the mask matters); bad names are one line before anything runs.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCompareOptions, runCompare, type RunResult } from '../src/api/compare.js';
import { buildGrid, parseSeries, plainColumn } from '../src/compare/grid.js';
import { loadConfigFile } from '../src/train/config.js';
import { tinyConfig } from './fixtures/tiny-config.js';

const quiet = { progress: false, log: () => {} };

function configFile(dir: string): string {
  const path = join(dir, 'tiny.json');
  writeFileSync(path, JSON.stringify(tinyConfig({ name: 'tiny', steps: 8, samples: 0 })));
  return path;
}

describe('compare: a convention +cautious as a series', function () {
  this.timeout(300000);

  it('parseSeries: a convention alone, or with +cautious', () => {
    expect(parseSeries('pytorch')).to.deep.equal({ series: 'pytorch', convention: 'pytorch', cautious: false });
    expect(parseSeries('adamc+cautious')).to.deep.equal({ series: 'adamc+cautious', convention: 'adamc', cautious: true });
  });

  it('buildGrid: the +cautious series sets cautiousWeightDecay in its runs only, and leads its exclusion example', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-series-'));
    const base = loadConfigFile(configFile(dir), []);
    const grid = buildGrid({ base, conventions: ['pytorch+cautious', 'pytorch'], decays: [plainColumn(0.1)], seeds: 1, exclusionExample: true });
    expect(grid.map((r) => [r.series, r.convention, r.cautious, r.config.optimizer.cautiousWeightDecay === true])).to.deep.equal([
      ['pytorch+cautious', 'pytorch', true, true],
      ['pytorch', 'pytorch', false, false],
      ['pytorch+cautious, no exclusion', 'pytorch', true, true],
    ]);
  });

  it('pytorch+cautious = pytorch with optimizer.cautiousWeightDecay true, bit for bit; = pytorch at λ = 0; ≠ pytorch at λ > 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-series-'));
    const configPath = configFile(dir);
    const common = { configPath, lrs: [0.01, 0.03], weightDecays: [0, 1], seeds: 2, exclusionExample: false, threads: 1, ...quiet };
    const both = await runCompare({ ...common, conventions: ['pytorch', 'pytorch+cautious'], out: join(dir, 'both') });
    const knob = await runCompare({ ...common, conventions: ['pytorch'], sets: ['optimizer.cautiousWeightDecay=true'], out: join(dir, 'knob') });
    expect(both.runs).to.have.length(16);
    const key = (r: RunResult) => `${r.lr} ${r.weightDecay} ${r.seed}`;
    const cautious = both.runs.filter((r) => r.series === 'pytorch+cautious');
    const plain = new Map(both.runs.filter((r) => r.series === 'pytorch').map((r) => [key(r), r]));
    const viaKnob = new Map(knob.runs.map((r) => [key(r), r]));
    expect(cautious).to.have.length(8);
    for (const r of cautious) {
      expect(r.convention).to.equal('pytorch');
      expect(Number.isFinite(r.evalLoss), `${key(r)}: ${r.error}`).to.equal(true);
      const k = viaKnob.get(key(r))!;
      expect([r.evalLoss, r.trainLoss, r.weightNorm], key(r)).to.deep.equal([k.evalLoss, k.trainLoss, k.weightNorm]);
      const p = plain.get(key(r))!;
      if (r.weightDecay === 0) expect([r.evalLoss, r.weightNorm], key(r)).to.deep.equal([p.evalLoss, p.weightNorm]);
      // λ = 1 at lr 0.01-0.03 shrinks the decayed tensors by ~1-3 % a step; masking about half the
      // coordinates changes the norm far beyond float32 rounding.
      else expect(Math.abs(r.decayedNorm - p.decayedNorm) / p.decayedNorm, key(r)).to.be.above(1e-3);
    }
    // The paired difference against the first series and the lr grid treat it as a series like any other.
    expect(both.grid.map((g) => g.series)).to.deep.equal(['pytorch', 'pytorch+cautious']);
    const cell = both.cells.find((c) => c.series === 'pytorch+cautious' && c.lr === 0.01 && c.weightDecay === 0)!;
    expect(cell.evalLossDelta).to.deep.equal({ mean: 0, std: 0 });
  });

  const table: Array<[string[], RegExp]> = [
    [['pytorch', 'pytorch+careful'], /^--conventions: unknown variant "\+careful" of pytorch in "pytorch\+careful" \(known: \+cautious\)$/],
    [['adamw+cautious'], /^--conventions: unknown convention "adamw" \(known: pytorch, keras, bert, l2, mxnet-legacy, paper, adamc, tf-sgd-decay, caffe\)$/],
    [['pytorch+cautious', 'pytorch+cautious'], /^--conventions: pytorch\+cautious is listed twice$/],
    [['pytorch+'], /^--conventions: unknown variant "\+" of pytorch in "pytorch\+" \(known: \+cautious\)$/],
  ];
  for (const [conventions, message] of table) {
    it(`--conventions ${conventions.join(',')} → ${message.source.slice(1, 50)}…`, () => {
      expect(() => resolveCompareOptions({ configPath: 'x.json', conventions })).to.throw(message);
    });
  }

  it('l2+cautious: one line naming the run, before any run (l2 has no decay term to mask)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-series-'));
    const lines: string[] = [];
    await runCompare({ configPath: configFile(dir), conventions: ['pytorch', 'l2+cautious'], weightDecays: [0.1], seeds: 1, exclusionExample: false, out: join(dir, 'out'), progress: false, log: (l) => lines.push(l) }).then(
      () => expect.fail('must throw'),
      (e: Error) => expect(e.message).to.match(/^compare run 2 \(l2\+cautious, lr 0\.01, λ = 0\.1\): options\.cautiousWeightDecay needs a decay to mask[^\n]*$/),
    );
    expect(lines, 'nothing ran').to.deep.equal([]);
  });
});
