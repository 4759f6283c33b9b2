// Crash safety: `shardtrain train` in a child process, killed with SIGKILL again and again while it writes
// checkpoints (every step), then resumed. After every kill each checkpoint-<step>.safetensors in the run
// directory verifies (header and both checksums), the next child resumes from the newest, and the run that
// went through all the kills ends with the same bytes as one that was never killed.
//
// Aiming: the writer prints a line when a write starts and when it is renamed (SHARDTRAIN_TRACE_CHECKPOINT=1,
// an opt-in hook in checkpoint.ts that only prints). The test kills a random delay after the start of the
// 1st, 2nd or 3rd write of each child (so runs make progress), the delay drawn from [0, the median write
// time seen so far]: most kills land inside a write (a temp file is left), the rest just after one, as
// writes vary and the parent reacts late.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTraining } from '../src/api/train.js';
import { kTracePrefix } from '../src/checkpoint/checkpoint.js';
import { checkpointFileName, listCheckpoints, verifyCheckpointFile } from '../src/checkpoint/checkpoint-store.js';
import { rng } from './reference.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const kSeed = 20261125;
const kKills = 21;
const kSteps = 50;

interface Child {
  readonly pid: number;
  readonly stdout: string;
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
}

/** Run the CLI; with `kill`, SIGKILL it `kill.delayMs` after the start of its `kill.write`-th checkpoint write. */
function train(args: string[], writeDurations: number[], kill?: { write: number; delayMs: number }): Promise<Child> {
  const child = spawn(process.execPath, [cli, 'train', ...args, '--threads', '1', '--no-progress'], {
    env: { ...process.env, SHARDTRAIN_TRACE_CHECKPOINT: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let starts = 0;
  let startedAt = 0;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    const lines = (stderr + d.toString()).split('\n');
    stderr = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith(`${kTracePrefix} done`)) writeDurations.push(performance.now() - startedAt);
      if (!line.startsWith(`${kTracePrefix} start`)) continue;
      startedAt = performance.now();
      if (kill && ++starts === kill.write) {
        // setTimeout waits at least 1 ms: shorter delays kill at once.
        if (kill.delayMs < 1) child.kill('SIGKILL');
        else setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
      }
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ pid: child.pid!, stdout, signal, code }));
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describe(`checkpoints survive SIGKILL during writes (seed ${kSeed})`, function () {
  this.timeout(120000);

  it(`${kKills} kills at random moments of checkpoint writes: every checkpoint left verifies, each resume starts from the newest, and the end is bitwise the uninterrupted run`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-crash-'));
    const configPath = join(dir, 'spirals.json');
    // The spirals example, wide enough (≈150 k params, a 1.8 MB file) that a write takes a few ms.
    const config = {
      model: { module: join(root, 'examples/spirals.mjs'), options: { perClass: 200, hidden: 384 } },
      seed: 3,
      steps: kSteps,
      batchSize: 16,
      samples: 0,
      checkpointEvery: 1,
      optimizer: { lr: 0.01, schedule: { name: 'linear', warmupSteps: 5 }, weightDecay: 0.01, excludeFromWeightDecay: 'bert' },
    };
    writeFileSync(configPath, JSON.stringify(config));
    const run = join(dir, 'run');
    const next = rng(kSeed);
    const durations: number[] = [];
    let midWrite = 0;
    const resumedFrom: number[] = [];

    for (let k = 0; k < kKills; k++) {
      const newest = readdirSync(dir).includes('run') ? listCheckpoints(run)[0] : undefined;
      const args = newest ? ['--resume', run] : ['--config', configPath, '--out', run];
      const delayMs = next() * (durations.length > 0 ? median(durations) : 8);
      const child = await train(args, durations, { write: 1 + Math.floor(next() * 3), delayMs });
      expect(child.signal, `kill ${k}: the child ended before it was killed\n${child.stdout}`).to.equal('SIGKILL');
      if (newest) {
        expect(child.stdout, `kill ${k}`).to.match(new RegExp(`resumed at step ${newest.step}\\n`));
        resumedFrom.push(newest.step);
      }
      const files = readdirSync(run);
      const temps = files.filter((f) => f.endsWith('.tmp'));
      // Only the child just killed may have left one: the earlier ones' were removed when this child started.
      expect(temps.every((f) => f.endsWith(`.${child.pid}.tmp`)), `kill ${k}: ${temps.join(', ')}`).to.equal(true);
      if (temps.length > 0) midWrite++;
      for (const c of listCheckpoints(run)) verifyCheckpointFile(c.path, c.step); // throws on any damaged one
    }

    const last = await train(['--resume', run], durations);
    expect(last.code, last.stdout).to.equal(0);
    const reference = join(dir, 'reference');
    await runTraining({ configPath, out: reference, threads: 1, progress: false, log: () => {} });
    const final = checkpointFileName(kSteps);
    // Whole files: params, moments, step, lr, data position and config, bit for bit.
    expect(readFileSync(join(run, final)).equals(readFileSync(join(reference, final))), 'final checkpoint differs from the uninterrupted run').to.equal(true);
    expect(readdirSync(run).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);

    // The kills must have come at many points of the run, and a good share of them inside a write.
    expect(new Set(resumedFrom).size).to.be.at.least(kKills / 3);
    expect(midWrite, `${midWrite} of ${kKills} kills landed mid-write`).to.be.at.least(Math.ceil(0.3 * kKills));
    console.log(`      ${kKills} kills: ${midWrite} mid-write (temp file left), ${kKills - midWrite} between writes; resumed from steps ${resumedFrom.join(' ')}; median write ${median(durations).toFixed(1)} ms`);
  });
});
