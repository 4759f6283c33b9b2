// Fuzzing (fast-check, fixed seed): damaged configs and checkpoints end in success or in one clean, one-line
// error naming the file (and key). The properties live in fuzz-properties.ts, shared with `npm run fuzz`,
// which runs them with more cases. SHARDTRAIN_SEED=<n> replays another seed.

import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpointHeader } from '../src/api/checkpoint.js';
import { fuzzTargets, kFuzzTargetNames } from './fuzz-properties.js';

const kSeed = process.env.SHARDTRAIN_SEED ? Number(process.env.SHARDTRAIN_SEED) : 20261125;
const kRuns = 1000;

describe(`fuzz (seed ${kSeed}, ${kRuns} cases per target)`, function () {
  this.timeout(120000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-fuzz-'));
  const targets = fuzzTargets(dir);

  for (const name of kFuzzTargetNames) {
    it(name, async () => {
      const t = (await targets).find((x) => x.name === name)!;
      const { failure, numRuns } = t.run({ numRuns: kRuns, seed: kSeed });
      expect(failure, failure ?? '').to.equal(null);
      expect(numRuns).to.equal(kRuns);
    });
  }

  it('a header length of 2^60 is refused from the length field alone', async () => {
    await targets; // writes original.safetensors
    const file = readFileSync(join(dir, 'original.safetensors'));
    file.writeBigUInt64LE(2n ** 60n, 0);
    const path = join(dir, 'huge-length.safetensors');
    writeFileSync(path, file);
    expect(() => readCheckpointHeader(path)).to.throw(`checkpoint ${path}: header length 1152921504606846976 does not fit in the file (${file.length} bytes): corrupt or truncated`);
  });
});
