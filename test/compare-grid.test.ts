// The grid runner: same command twice → same numbers; what it writes; the exclusion example; normalized
// weight decay; bad inputs (one-line errors, nothing overwritten), through the API and the CLI.

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveCompareOptions, runCompare, type CompareOptions } from '../src/api/compare.js';
import { parseNumberList } from '../src/compare/options.js';
import { etaSeconds, formatDuration } from '../src/compare/progress.js';
import { aggregate, stat } from '../src/compare/summary.js';
import { tinyConfig } from './fixtures/tiny-config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');

function tinyConfigFile(dir: string, steps = 12): string {
  const path = join(dir, 'tiny.json');
  writeFileSync(path, JSON.stringify(tinyConfig({ name: 'tiny', steps, samples: 0 })));
  return path;
}

/** summary.json without what may differ between two identical commands: wall times and the output path. */
function reproducible(dir: string): unknown {
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'), (k, v: unknown) => (k === 'wallSec' || k === 'totalWallSec' || k === 'command' ? undefined : v));
}

describe('compare: the grid runner', function () {
  this.timeout(180000);
  const quiet = { progress: false, log: () => {} };

  it('the same command twice gives the same summary.json numbers; writes summary.md, loss.svg, heatmap.svg; the exclusion example is in the summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-compare-'));
    const configPath = tinyConfigFile(dir);
    const options: CompareOptions = { configPath, conventions: ['pytorch', 'l2'], weightDecays: [0, 0.1], seeds: 2, ...quiet };
    const a = await runCompare({ ...options, out: join(dir, 'a') });
    await runCompare({ ...options, out: join(dir, 'b') });
    expect(reproducible(join(dir, 'a'))).to.deep.equal(reproducible(join(dir, 'b')));
    expect(readdirSync(join(dir, 'a')).sort()).to.deep.equal(['heatmap.svg', 'loss.svg', 'summary.json', 'summary.md']);
    for (const svg of ['loss.svg', 'heatmap.svg']) expect(readFileSync(join(dir, 'a', svg), 'utf8')).to.match(/^<svg[^]*<\/svg>$/);

    // 2 conventions × 2 λ × 2 seeds + the exclusion example (pytorch, BERT's rule off) at λ = 0.1 × 2 seeds.
    expect(a.runs).to.have.length(10);
    expect(a.cells.map((c) => `${c.series}@${c.weightDecay}`)).to.deep.equal(['pytorch@0', 'pytorch@0.1', 'l2@0', 'l2@0.1', 'pytorch, no exclusion@0.1']);
    const main = a.cells.find((c) => c.series === 'pytorch' && c.weightDecay === 0.1)!;
    const off = a.cells.find((c) => c.exclusionExample)!;
    // Without the exclusion the LayerNorm and bias tensors decay too: their norm ends lower.
    expect(off.excludedNorm.mean).to.be.below(main.excludedNorm.mean);
    expect(a.exclusion.example).to.include('pytorch, no exclusion');
    const md = readFileSync(join(dir, 'a', 'summary.md'), 'utf8');
    expect(md).to.include('| pytorch, no exclusion |').and.include('## Exclusion rule').and.include('![held-out loss curves](loss.svg)');
    // Seeds differ (initial values and data order), so std > 0; every run has its eval curve from step 0.
    expect(main.evalLoss.std).to.be.above(0);
    for (const r of a.runs) expect(r.curve.map((p) => p.step)).to.deep.equal([0, 2, 4, 6, 8, 10, 12]);

    // --force overwrites a previous compare.
    await runCompare({ ...options, conventions: ['pytorch'], weightDecays: [0], seeds: 1, out: join(dir, 'a'), force: true });
    expect((JSON.parse(readFileSync(join(dir, 'a', 'summary.json'), 'utf8')) as { runs: unknown[] }).runs).to.have.length(1);
  });

  it('--normalized-weight-decay λn gives λ = λn·√(b/(B·T)) (= λn/√steps, since T = steps·b/B)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-compare-'));
    const s = await runCompare({ configPath: tinyConfigFile(dir, 16), conventions: ['paper'], normalizedWeightDecays: [0.05, 0.2], seeds: 1, exclusionExample: false, out: join(dir, 'n'), ...quiet });
    const b = 32;
    const B = s.config.trainExamples;
    const T = (16 * b) / B;
    expect(s.weightDecay.normalized!.epochs).to.be.closeTo(T, 1e-12);
    expect(s.cells.map((c) => c.lambdaNorm)).to.deep.equal([0.05, 0.2]);
    s.cells.forEach((c) => {
      expect(c.weightDecay).to.be.closeTo(c.lambdaNorm! * Math.sqrt(b / (B * T)), 1e-15);
      expect(c.weightDecay).to.be.closeTo(c.lambdaNorm! / 4, 1e-12);
    });
    expect(readFileSync(join(dir, 'n', 'summary.md'), 'utf8')).to.include('λn = 0.05 (λ = 0.0125)');
  });

  it('helpers: mean ± sample std, cells in first-seen order, ETA', () => {
    expect(stat([1, 2, 3])).to.deep.equal({ mean: 2, std: 1 });
    expect(stat([5])).to.deep.equal({ mean: 5, std: 0 });
    expect(stat([1, Number.NaN, 3]).mean).to.equal(2); // a diverged seed is left out of the mean
    expect(Number.isNaN(stat([]).mean)).to.equal(true);
    const run = (series: string, weightDecay: number, seed: number, evalLoss: number) => ({
      index: 0, series, convention: series, lr: 0.01, column: `λ = ${weightDecay}`, weightDecay, lambdaNorm: null, timescale: null, seed, exclusionExample: false, trainLoss: 1, evalLoss,
      curve: [{ step: 0, evalLoss: 3 }, { step: 5, evalLoss }], weightNorm: 1, decayedNorm: 1, excludedNorm: 0, error: null, wallSec: 1,
    });
    const cells = aggregate([run('b', 0.1, 1, 2), run('a', 0, 1, 3), run('b', 0.1, 2, 4), run('b', 0, 1, 1)]);
    expect(cells.map((c) => `${c.series}@${c.weightDecay}`)).to.deep.equal(['b@0.1', 'b@0', 'a@0']);
    expect(cells[0].evalLoss.mean).to.equal(3);
    expect(cells[0].curve).to.deep.equal([{ step: 0, evalLoss: 3 }, { step: 5, evalLoss: 3 }]);
    expect(etaSeconds(10, 2, 6)).to.equal(20);
    expect(formatDuration(125)).to.equal('2m 05s');
  });
});

describe('compare: bad input', function () {
  this.timeout(60000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-compare-bad-'));
  const configPath = tinyConfigFile(dir);

  // [options, message]: checked before any run starts.
  const table: Array<[Partial<CompareOptions>, RegExp]> = [
    [{ conventions: ['pytorch', 'adamax'] }, /^--conventions: unknown convention "adamax" \(known: pytorch, keras, bert, l2, mxnet-legacy, paper, adamc, tf-sgd-decay, caffe\)$/],
    [{ conventions: [] }, /^--conventions must list at least one convention, got an empty list/],
    [{ conventions: ['l2', 'l2'] }, /^--conventions: l2 is listed twice$/],
    [{ weightDecays: [0, -0.01] }, /^--weight-decay: weight decay must be a finite number >= 0, got -0.01$/],
    [{ weightDecays: [] }, /^--weight-decay must list at least one value, got an empty list$/],
    [{ normalizedWeightDecays: [-1] }, /^--normalized-weight-decay: weight decay must be a finite number >= 0, got -1$/],
    [{ weightDecays: [0], normalizedWeightDecays: [0.05] }, /^--weight-decay and --normalized-weight-decay cannot be combined/],
    [{ seeds: 0 }, /^--seeds must be a positive integer, got 0$/],
    [{ steps: 2.5 }, /^--steps must be a positive integer, got 2.5$/],
    [{ configPath: '' }, /^compare needs --config FILE$/],
  ];
  for (const [over, message] of table) {
    it(`${JSON.stringify(over)} → ${message.source.slice(1, 60)}…`, () => {
      expect(() => resolveCompareOptions({ configPath, ...over })).to.throw(message);
    });
  }

  it('a weight-decay list entry that is not a number names it', () => {
    expect(() => parseNumberList('--weight-decay', '0,1e-2,x')).to.throw(/^--weight-decay: "x" is not a number$/);
  });

  function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [cli, 'compare', '--config', configPath, '--no-progress', ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  const cliTable: Array<[string[], RegExp]> = [
    [['--conventions', 'pytorch,adamw'], /unknown convention "adamw"/],
    [['--conventions', ''], /at least one convention/],
    [['--weight-decay', '0,-1e-4'], /weight decay must be a finite number >= 0, got -0.0001/],
    [['--seeds', 'three'], /--seeds must be a positive integer, got NaN/],
  ];
  for (const [args, message] of cliTable) {
    it(`CLI ${args.join(' ')}: exit 1, one line on stderr, no output directory`, () => {
      const out = join(dir, `out-${cliTable.findIndex((c) => c[0] === args)}`);
      const r = runCli([...args, '--out', out]);
      expect(r.status).to.equal(1);
      expect(r.stdout).to.equal('');
      expect(r.stderr).to.match(/^shardtrain compare: [^\n]+\n$/);
      expect(r.stderr).to.match(message);
      expect(existsSync(out)).to.equal(false);
    });
  }

  it('CLI: an output directory holding a previous compare, without --force: one-line error, nothing overwritten', () => {
    const out = join(dir, 'previous');
    mkdirSync(out);
    const files = { 'summary.json': JSON.stringify({ kind: 'shardtrain compare', runs: [] }), 'summary.md': 'old', 'loss.svg': '<svg/>', 'heatmap.svg': '<svg/>', 'notes.txt': 'mine' };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(out, name), text);
    const r = runCli(['--conventions', 'pytorch', '--weight-decay', '0', '--seeds', '1', '--out', out]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/^shardtrain compare: --out \S+ already holds a previous compare \(\S+summary\.json\); pass --force to overwrite it, or choose another --out\n$/);
    for (const [name, text] of Object.entries(files)) expect(readFileSync(join(out, name), 'utf8')).to.equal(text);
  });
});
