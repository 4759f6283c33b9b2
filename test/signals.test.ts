// Signals (issue 6, item 5), on the CLI in a child process: SIGINT / SIGTERM finish the step, write a
// checkpoint and exit 130 / 143; a second signal exits at once, leaving no half-written checkpoint (every
// *.safetensors in the run directory loads) and no temp file.

import { expect } from 'chai';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkpointMetadata, readCheckpointHeader } from '../src/api/checkpoint.js';
import { runTraining } from '../src/api/train.js';
import { faultConfig, runCli, tempFiles } from './fixtures/fault-run.js';
import { checkpointFileName, verifyCheckpointFile } from '../src/checkpoint/checkpoint-store.js';

/** A run far too long to finish during the test; `step N/2000` lines come every 100 steps. */
const longRun = (over = {}) => faultConfig({}, { steps: 2000, logEvery: 100, ...over });
const stepLine = /step \d+\/2000/;

describe('signals', function () {
  this.timeout(60000);

  it('SIGTERM finishes the step, writes a checkpoint that loads and resumes, and exits 143', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-sigterm-'));
    let sent = false;
    const result = await runCli(dir, longRun(), [], (stdout, child) => {
      if (!sent && stepLine.test(stdout)) sent = child.kill('SIGTERM');
    });
    expect(result.code).to.equal(143);
    const m = /interrupted: checkpoint at step (\d+) written/.exec(result.stdout);
    expect(m, result.stdout).to.not.equal(null);
    const step = Number(m![1]);
    const run = join(dir, 'run');
    expect(checkpointMetadata(readCheckpointHeader(join(run, checkpointFileName(step)))).step).to.equal(step);
    const resumed = await runTraining({ resume: run, steps: step + 3, threads: 2, progress: false, log: () => {} });
    expect(resumed).to.include({ step: step + 3, interrupted: false });
  });

  const doubles: Array<[NodeJS.Signals, NodeJS.Signals, number]> = [
    ['SIGINT', 'SIGINT', 130],
    ['SIGTERM', 'SIGTERM', 143],
    ['SIGINT', 'SIGTERM', 143],
  ];
  for (const [first, second, code] of doubles) {
    it(`${first} then ${second} exits ${code} at once; every checkpoint verifies, and a temp file cut short is the next run's to remove`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'shardtrain-double-'));
      let secondAt = 0;
      let pid = 0;
      // A checkpoint every step: the signals land while checkpoints are being written. The second signal is
      // sent once the first has been heard (two signals pending at once reach the handlers in no set order).
      const result = await runCli(dir, longRun({ checkpointEvery: 1 }), [], (stdout, child) => {
        if (pid === 0 && stepLine.test(stdout)) {
          pid = child.pid!;
          child.stderr!.on('data', (d: Buffer) => {
            if (secondAt === 0 && /finishing this step/.test(d.toString())) {
              child.kill(second);
              secondAt = Date.now();
            }
          });
          child.kill(first);
        }
      });
      expect(secondAt, 'the first signal was heard').to.be.above(0);
      expect(result.code).to.equal(code);
      expect(result.exitedAt - secondAt).to.be.below(5000);
      const run = join(dir, 'run');
      const checkpoints = readdirSync(run).filter((f) => f.endsWith('.safetensors'));
      expect(checkpoints).to.have.length.above(0);
      for (const f of checkpoints) expect(verifyCheckpointFile(join(run, f)).metadata.step).to.match(/^[1-9]\d*$/);
      // The write the second signal cut short (if any) left only its own temp file, under a name no reader takes.
      expect(tempFiles(run).every((f) => f.endsWith(`.${pid}.tmp`)), tempFiles(run).join(', ')).to.equal(true);
      const newest = Math.max(...checkpoints.map((f) => checkpointMetadata(readCheckpointHeader(join(run, f))).step));
      const resumed = await runTraining({ resume: run, steps: newest + 1, threads: 2, progress: false, log: () => {} });
      expect(resumed).to.include({ step: newest + 1, interrupted: false });
      expect(tempFiles(run)).to.deep.equal([]);
    });
  }
});
