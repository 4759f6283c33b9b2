// A run directory's checkpoints: keepLast pruning, dead writers' temp files cleaned up, and a resume that
// skips a damaged newest checkpoint with one warning line.

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTraining } from '../src/api/train.js';
import { checkpointFileName, pruneCheckpoints } from '../src/checkpoint/checkpoint-store.js';
import { tinyConfig } from './fixtures/tiny-config.js';

const names = (dir: string): string[] => readdirSync(dir).sort();
const snapshot = (dir: string): Array<[string, string]> => names(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]);

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '0']);
  return pid!;
}

describe('checkpoint store (run directory)', function () {
  this.timeout(60000);
  const root = mkdtempSync(join(tmpdir(), 'shardtrain-store-'));

  it('pruneCheckpoints keeps the saved one and the keepLast − 1 newest older ones; later steps (an abandoned run) go', () => {
    const dir = join(root, 'prune');
    mkdirSync(dir);
    for (const step of [1, 2, 3, 4, 5, 6, 7, 123456789]) writeFileSync(join(dir, checkpointFileName(step)), '');
    writeFileSync(join(dir, 'checkpoint.safetensors'), ''); // not of the pattern: left alone
    pruneCheckpoints(dir, 5, 3);
    expect(names(dir)).to.deep.equal(['checkpoint-00000003.safetensors', 'checkpoint-00000004.safetensors', 'checkpoint-00000005.safetensors', 'checkpoint.safetensors']);
    writeFileSync(join(dir, checkpointFileName(6)), '');
    pruneCheckpoints(dir, 6, 1);
    expect(names(dir)).to.deep.equal(['checkpoint-00000006.safetensors', 'checkpoint.safetensors']);
  });

  it('a run keeps the newest keepLast checkpoints and removes dead writers\' temp files, not live ones', async () => {
    const dir = join(root, 'keep');
    mkdirSync(dir);
    const dead = `.checkpoint-00000004.safetensors.${deadPid()}.tmp`;
    const live = '.checkpoint-00000004.safetensors.1.tmp'; // pid 1 is always alive
    writeFileSync(join(dir, dead), 'partial');
    writeFileSync(join(dir, live), 'partial');
    const configPath = join(root, 'keep.json');
    writeFileSync(configPath, JSON.stringify(tinyConfig({ steps: 10, checkpointEvery: 2, keepLast: 2 })));
    await runTraining({ configPath, out: dir, threads: 1, progress: false, log: () => {} });
    const left = names(dir);
    expect(left.filter((f) => f.startsWith('checkpoint-'))).to.deep.equal(['checkpoint-00000008.safetensors', 'checkpoint-00000010.safetensors']);
    expect(left).to.not.include(dead);
    expect(left).to.include(live);
  });

  describe('--resume DIR with a damaged newest checkpoint', () => {
    const dir = join(root, 'fallback');
    const configPath = join(root, 'fallback.json');
    let original: Buffer;

    before(async () => {
      writeFileSync(configPath, JSON.stringify(tinyConfig({ steps: 6, checkpointEvery: 2 })));
      await runTraining({ configPath, out: dir, threads: 1, progress: false, log: () => {} });
      expect(names(dir).filter((f) => f.startsWith('checkpoint-'))).to.have.length(3);
      original = readFileSync(join(dir, checkpointFileName(6)));
    });

    it('warns once, naming the file and the checksum, resumes from the next older one, and ends bitwise where the first run ended', async () => {
      const damaged = Buffer.from(original);
      damaged[damaged.length - 3] ^= 0x01; // a bit in the data section
      writeFileSync(join(dir, checkpointFileName(6)), damaged);
      const warnings: string[] = [];
      const lines: string[] = [];
      const summary = await runTraining({ resume: dir, threads: 1, progress: false, log: (l) => lines.push(l), warn: (l) => warnings.push(l) });
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(/^warning: checkpoint \S+checkpoint-00000006\.safetensors: data checksum mismatch \(crc32 of the data section is [0-9a-f]{8}, __metadata__\.data_crc32 says [0-9a-f]{8}\): corrupt or partly written file; trying the next older checkpoint$/);
      expect(lines[0]).to.match(/resumed at step 4$/);
      expect(summary.step).to.equal(6);
      // Steps 5 and 6 again from checkpoint 4: the same bytes as the first run's checkpoint 6 (step, lr, data position, tensors).
      expect(readFileSync(join(dir, checkpointFileName(6))).equals(original)).to.equal(true);
    });

    it('when no checkpoint verifies: one warning each, a one-line error, and the directory untouched', async () => {
      for (const step of [2, 4, 6]) {
        const path = join(dir, checkpointFileName(step));
        const bytes = readFileSync(path);
        bytes[bytes.length - 1] ^= 0x80;
        writeFileSync(path, bytes);
      }
      const before = snapshot(dir);
      const warnings: string[] = [];
      let error: Error | null = null;
      try {
        await runTraining({ resume: dir, threads: 1, progress: false, log: () => {}, warn: (l) => warnings.push(l) });
      } catch (err) {
        error = err as Error;
      }
      expect(warnings.map((w) => /checkpoint-(\d+)\.safetensors: data checksum mismatch/.exec(w)?.[1])).to.deep.equal(['00000006', '00000004', '00000002']);
      expect(error?.message).to.equal(`--resume ${dir}: none of its 3 checkpoints verifies`);
      expect(snapshot(dir)).to.deep.equal(before);
    });
  });
});
