// The command line as a newcomer meets it: `shardtrain train` with no --config trains the built-in default,
// and a --steps shorter than the config's warmup runs, saying in one line that the warmup was cut.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const run = (args: string[]) => promisify(execFile)(process.execPath, [cli, ...args], { cwd: root });

describe('command line defaults', function () {
  this.timeout(120000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'shardtrain-cli-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('train with no --config trains config/char-lm.json; --steps 5 cuts its 100-step warmup to 5, saying so', async () => {
    const out = join(dir, 'run');
    const { stdout } = await run(['train', '--steps', '5', '--threads', '2', '--out', out, '--no-progress']);
    expect(stdout).to.include('no --config given: training the built-in default, config/char-lm.json');
    expect(stdout).to.include('note: optimizer.schedule.warmupSteps (100) is longer than the run (5 steps): warmup cut to 5 steps');
    expect(existsSync(join(out, 'checkpoint-00000005.safetensors'))).to.equal(true);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { name: string; steps: number; optimizer: { schedule: { warmupSteps: number } } };
    expect(config.name).to.equal('char-lm');
    expect(config.steps).to.equal(5);
    expect(config.optimizer.schedule.warmupSteps).to.equal(100); // the config as written; the cut is derived from it
    // The run did learn something with its 5-step warmup (lr 0 at step 0, then up to 0.01).
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { step: number; evalLoss: number };
    expect(summary.step).to.equal(5);
    expect(summary.evalLoss).to.be.lessThan(Math.log(28));
  });

  it('compare with no --config uses the default too, and a short --steps cuts the warmup', async () => {
    const out = join(dir, 'compare');
    const { stdout } = await run(['compare', '--steps', '4', '--conventions', 'pytorch', '--weight-decay', '0', '--seeds', '1', '--eval-points', '1', '--no-exclusion-example', '--threads', '2', '--out', out, '--no-progress']);
    expect(stdout).to.include('no --config given: comparing on the built-in default, config/char-lm.json');
    expect(stdout).to.include('warmup cut to 4 steps');
    expect(existsSync(join(out, 'summary.json'))).to.equal(true);
  });

  it('an explicit totalSteps shorter than the warmup is still refused (that is a config error, not a short run)', async () => {
    const { writeFileSync } = await import('node:fs');
    const path = join(dir, 'bad.json');
    const base = JSON.parse(readFileSync(join(root, 'config/char-lm.json'), 'utf8')) as { optimizer: { schedule: Record<string, unknown> } };
    base.optimizer.schedule = { name: 'cosine', warmupSteps: 100, totalSteps: 50 };
    writeFileSync(path, JSON.stringify(base));
    const err = await run(['train', '--config', path, '--steps', '5', '--out', join(dir, 'x'), '--no-progress']).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).to.equal(1);
    expect(err?.stderr.trim()).to.equal('shardtrain train: options.schedule.warmupSteps (100) must not exceed totalSteps (50)');
    expect(existsSync(join(dir, 'x'))).to.equal(false);
  });
});
