// `shardtrain compare --lr a,b,c`: the lr × λ (or × τ) grid per convention on a tiny char-lm, a few steps a run.
// What is checked: which runs with which lr and λ; the grid in summary.json against the runs themselves (the
// means, the best cell found again from the runs); the tables and lr-heatmap.svg with the best cell marked; the
// λ a timescale gives each run; the existing views still made; bad input as one line before anything runs.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveCompareOptions, runCompare, type CompareOptions, type RunResult } from '../src/api/compare.js';
import { tinyConfig } from './fixtures/tiny-config.js';
import type { TrainConfigInput } from '../src/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const quiet = { progress: false, log: () => {} };

function configFile(dir: string, over: Partial<TrainConfigInput> = {}): string {
  const path = join(dir, 'tiny.json');
  writeFileSync(path, JSON.stringify(tinyConfig({ name: 'tiny', steps: 6, samples: 0, ...over })));
  return path;
}

const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;

describe('compare --lr: the lr × weight-decay grid', function () {
  this.timeout(300000);

  it('2 conventions × 2 lrs × 2 λ × 2 seeds: every run at its lr and λ; summary.json grid = the runs; best cell marked in summary.md and lr-heatmap.svg; the old views too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-lr-grid-'));
    const out = join(dir, 'out');
    const s = await runCompare({ configPath: configFile(dir), conventions: ['pytorch', 'l2'], lrs: [0.003, 0.03], weightDecays: [0, 0.1], seeds: 2, exclusionExample: false, threads: 1, out, ...quiet });
    expect(readdirSync(out).sort()).to.deep.equal(['heatmap.svg', 'loss.svg', 'lr-heatmap.svg', 'summary.json', 'summary.md']);
    expect(s.runs).to.have.length(16);
    expect(s.lrs).to.deep.equal([0.003, 0.03]);
    const key = (r: RunResult) => `${r.series} ${r.lr} ${r.weightDecay} ${r.seed}`;
    expect(new Set(s.runs.map(key)).size).to.equal(16);
    for (const r of s.runs) {
      expect([0.003, 0.03]).to.include(r.lr);
      expect([0, 0.1]).to.include(r.weightDecay);
      expect(r.column).to.equal(`λ = ${r.weightDecay}`);
      expect(Number.isFinite(r.evalLoss), `${key(r)}: ${r.error}`).to.equal(true);
    }
    // The lr matters (not a grid that ignores --lr): the same convention, λ and seed at the two lrs differ.
    const at = (series: string, lr: number, wd: number, seed: number) => s.runs.find((r) => r.series === series && r.lr === lr && r.weightDecay === wd && r.seed === seed)!;
    expect(Math.abs(at('pytorch', 0.003, 0, 7).evalLoss - at('pytorch', 0.03, 0, 7).evalLoss)).to.be.above(1e-3);

    // The grid per series, recomputed from the runs: the mean over seeds per (lr, λ), and its argmin.
    expect(s.grid.map((g) => g.series)).to.deep.equal(['pytorch', 'l2']);
    for (const g of s.grid) {
      expect(g.lrs).to.deep.equal([0.003, 0.03]);
      expect(g.columns).to.deep.equal(['λ = 0', 'λ = 0.1']);
      let best = { loss: Infinity, lr: 0, column: '' };
      g.lrs.forEach((lr, i) =>
        [0, 0.1].forEach((wd, j) => {
          const loss = mean([7, 8].map((seed) => at(g.series, lr, wd, seed).evalLoss));
          expect(g.evalLoss[i][j]).to.be.closeTo(loss, 1e-12);
          expect(g.weightDecay[i][j]).to.equal(wd);
          if (loss < best.loss) best = { loss, lr, column: g.columns[j] };
        }),
      );
      expect(g.best).to.deep.include({ lr: best.lr, column: best.column });
      expect(g.best!.evalLoss).to.be.closeTo(best.loss, 1e-12);
    }
    const json = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { grid: unknown[]; lrs: number[] };
    expect(json.lrs).to.deep.equal([0.003, 0.03]);
    expect(json.grid).to.have.length(2);

    // summary.md: a table per convention with exactly one starred cell, the best one; the old tables keep a
    // row per (convention, lr).
    const md = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(md).to.include('## Held-out loss over lr × weight decay, per convention').and.include('![held-out loss over lr × λ, one panel per convention](lr-heatmap.svg)');
    for (const g of s.grid) {
      const section = md.slice(md.indexOf(`**${g.series}** — best: lr ${g.best!.lr}, ${g.best!.column}`));
      expect(section.length, g.series).to.be.below(md.length);
      const table = section.split('\n\n')[1];
      expect(table.match(/★/g), `${g.series}: one ★`).to.have.length(1);
      const starred = table.split('\n').find((l) => l.includes('★'))!;
      expect(starred.startsWith(`| ${g.best!.lr} |`)).to.equal(true);
      expect(starred).to.include(`**★ ${g.best!.evalLoss.toFixed(4)}`);
    }
    expect(md).to.include('| pytorch, lr 0.003 |').and.include('| l2, lr 0.03 |').and.include('![final held-out loss](heatmap.svg)');
    // Paired deltas are taken at the same lr: l2 − pytorch at lr 0.03, λ 0.1, from the runs.
    const l2 = s.cells.find((c) => c.series === 'l2' && c.lr === 0.03 && c.weightDecay === 0.1)!;
    expect(l2.evalLossDelta.mean).to.be.closeTo(mean([7, 8].map((seed) => at('l2', 0.03, 0.1, seed).evalLoss - at('pytorch', 0.03, 0.1, seed).evalLoss)), 1e-12);

    const svg = readFileSync(join(out, 'lr-heatmap.svg'), 'utf8');
    expect(svg).to.match(/^<svg[^]*<\/svg>$/);
    expect(svg.match(/>★ [\d.]+<\/text>/g), 'one starred label per panel').to.have.length(2);
    for (const series of ['pytorch', 'l2']) expect(svg).to.include(`>${series}<`);
  });

  it('--timescale with --lr: each run gets λ = 1/(r_peak·τ·N/B) of its own lr and convention (pytorch: lr; tf-sgd-decay: 1, not the lr); the summary says which λ', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-lr-tau-'));
    const out = join(dir, 'out');
    const s = await runCompare({ configPath: configFile(dir, { steps: 4 }), conventions: ['pytorch', 'tf-sgd-decay'], lrs: [0.003, 0.03], timescales: [1, 4], seeds: 1, exclusionExample: false, threads: 1, out, ...quiet });
    const N = s.config.trainExamples;
    const M = N / 32;
    expect(s.weightDecay.timescale).to.deep.include({ datasetSize: N, batchSize: 32, iterationsPerEpoch: M });
    expect(s.runs).to.have.length(8);
    for (const r of s.runs) {
      const tau = r.timescale!.epochs;
      expect(r.column).to.equal(`τ = ${tau} epochs`);
      expect(r.timescale!.iterations).to.be.closeTo(tau * M, 1e-9);
      // The linear schedule of the tiny config peaks at 1: r_peak = lr for pytorch, 1 for tf-sgd-decay.
      const rate = r.convention === 'pytorch' ? r.lr : 1;
      expect(r.weightDecay, `${r.series} lr ${r.lr} τ ${tau}`).to.be.closeTo(1 / (rate * tau * M), 1e-12 / (rate * tau * M));
    }
    const md = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(md).to.include(`τ_iter = τ·M with M = N/B = ${N}/32`).and.include('| λ from τ | τ = 1 epochs | τ = 4 epochs |');
    const pytorchRow = md.split('\n').find((l) => l.startsWith('| pytorch, lr 0.03 |') && !l.includes('±') && l.split('|').length === 5)!;
    expect(pytorchRow).to.include((1 / (0.03 * M)).toPrecision(4)).and.include((1 / (0.03 * 4 * M)).toPrecision(4));
    expect(readdirSync(out)).to.include('lr-heatmap.svg');
  });

  it('every run is checked before the first one trains: adamc under a schedule that never rises above 0 stops the compare in one line naming the run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-lr-bad-'));
    const lines: string[] = [];
    const configPath = configFile(dir, { steps: 1, optimizer: { lr: 0.01, schedule: { name: 'linear', warmupSteps: 1 } } });
    let error: Error | undefined;
    await runCompare({ configPath, conventions: ['pytorch', 'adamc'], weightDecays: [0.1], seeds: 1, exclusionExample: false, out: join(dir, 'out'), progress: false, log: (l) => lines.push(l) }).catch((e: Error) => (error = e));
    expect(error?.message).to.match(/^compare run 2 \(adamc, lr 0\.01, λ = 0\.1\): options\.decay 'corrected' \(convention "adamc"\) decays by λ·lr_t²\/lr_max, and lr_max, the schedule's peak lr, is 0 [^\n]*$/);
    expect(lines, 'nothing ran').to.deep.equal([]);
    expect(existsSync(join(dir, 'out', 'summary.json'))).to.equal(false);
  });

  it('cautiousWeightDecay in the config with l2 among the conventions: one line naming the run, before any run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-lr-bad-'));
    const configPath = configFile(dir, { optimizer: { lr: 0.01, cautiousWeightDecay: true } });
    await runCompare({ configPath, conventions: ['pytorch', 'l2'], weightDecays: [0.1], seeds: 1, exclusionExample: false, out: join(dir, 'out'), ...quiet }).then(
      () => expect.fail('must throw'),
      (e: Error) => expect(e.message).to.match(/^compare run 2 \(l2, lr 0\.01, λ = 0\.1\): options\.cautiousWeightDecay needs a decay to mask/),
    );
  });

  // [options, message]: resolveCompareOptions, before anything is loaded.
  const table: Array<[Partial<CompareOptions>, RegExp]> = [
    [{ lrs: [0.01, 0] }, /^--lr: learning rate must be a finite number > 0, got 0$/],
    [{ lrs: [-0.01] }, /^--lr: learning rate must be a finite number > 0, got -0\.01$/],
    [{ lrs: [Number.POSITIVE_INFINITY] }, /^--lr: learning rate must be a finite number > 0, got Infinity$/],
    [{ lrs: [] }, /^--lr must list at least one value, got an empty list$/],
    [{ lrs: [0.01, 0.01] }, /^--lr: 0\.01 is listed twice$/],
    [{ timescales: [2, -1] }, /^--timescale: τ must be a finite number of epochs > 0, got -1$/],
    [{ timescales: [Number.NaN] }, /^--timescale: τ must be a finite number of epochs > 0, got NaN$/],
    [{ timescales: [0] }, /^--timescale: τ must be a finite number of epochs > 0, got 0$/],
    [{ timescales: [1], weightDecays: [0] }, /^--weight-decay and --timescale cannot be combined: give one list of λ, of λ_norm or of τ$/],
    [{ timescales: [1], normalizedWeightDecays: [0.05] }, /^--normalized-weight-decay and --timescale cannot be combined/],
  ];
  for (const [over, message] of table) {
    it(`${JSON.stringify(over)} → ${message.source.slice(1, 60)}…`, () => {
      expect(() => resolveCompareOptions({ configPath: 'x.json', ...over })).to.throw(message);
    });
  }

  const cliTable: Array<[string[], RegExp]> = [
    [['--lr', '0.01,0'], /^shardtrain compare: --lr: learning rate must be a finite number > 0, got 0\n$/],
    [['--lr', '0.01,x'], /^shardtrain compare: --lr: "x" is not a number\n$/],
    [['--timescale', '-3'], /^shardtrain compare: --timescale: τ must be a finite number of epochs > 0, got -3\n$/],
  ];
  for (const [args, message] of cliTable) {
    it(`CLI ${args.join(' ')}: exit 1, one line on stderr, no output directory`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'shardtrain-lr-cli-'));
      const out = join(dir, 'out');
      const r = spawnSync(process.execPath, [cli, 'compare', '--config', configFile(dir), '--no-progress', ...args, '--out', out], { encoding: 'utf8' });
      expect(r.status).to.equal(1);
      expect(r.stdout).to.equal('');
      expect(r.stderr).to.match(message);
      expect(existsSync(out)).to.equal(false);
    });
  }
});
