// One writer per run directory: a second `train` on a directory in use is refused at once, naming the
// holder; a lock whose holder died is taken over with a warning; every way out releases the lock.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCompare } from '../src/api/compare.js';
import { RunDirLockedError, RunLock } from '../src/train/run-lock.js';
import { faultConfig, root, runCli, spawnCli } from './fixtures/fault-run.js';

const lockDir = (run: string) => join(run, '.shardtrain.lock');
const holderFile = (run: string) => join(run, '.shardtrain.lock.json');

/** Steps logged in metrics.jsonl, in order (training lines only). */
function loggedSteps(run: string): number[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"loss"'))
    .map((l) => (JSON.parse(l) as { step: number }).step);
}

/** A pid that certainly belongs to no live process: one that just ended. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

// Long enough to be running when the second process starts; a line of `step N/4000` every 200 steps.
const longRun = (over = {}) => faultConfig({}, { steps: 4000, logEvery: 1, checkpointEvery: 100, ...over });
const running = /step \d+\/4000/;

describe('run directory lock', function () {
  this.timeout(90000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'shardtrain-lock-'))));

  it('a second train --resume on a directory in use is refused at once, naming it, the pid, the host and since when; no step is logged twice', async () => {
    const run = join(dir, 'run');
    let second: Promise<Awaited<ReturnType<typeof spawnCli>>> | null = null;
    let startedAt = 0;
    const first = await runCli(dir, longRun(), [], (stdout, child) => {
      if (second === null && running.test(stdout)) {
        startedAt = Date.now();
        second = spawnCli(['train', '--resume', run, '--threads', '2', '--no-progress']).then((r) => {
          child.kill('SIGTERM'); // the refusal is in: let the first run finish its step and stop
          return r;
        });
      }
    });
    expect(second, 'the second process was started').to.not.equal(null);
    const refused = await second!;
    expect(refused.code).to.equal(1);
    expect(refused.exitedAt - startedAt, 'refused at once').to.be.below(5000);
    const line = new RegExp(`^shardtrain train: run directory ${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by pid ${'\\d+'} on ${hostname()} since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(.*train --config .*\\); wait for it to end, or choose another directory\\n$`);
    expect(refused.stderr).to.match(line);
    expect(refused.stdout).to.equal('');
    expect(first.code).to.equal(143);
    const steps = loggedSteps(run);
    expect(new Set(steps).size, 'no step logged twice').to.equal(steps.length);
    expect(existsSync(lockDir(run)), 'released on SIGTERM').to.equal(false);
    expect(existsSync(holderFile(run))).to.equal(false);
    // Now the directory is free: the resume goes through and logs each step once.
    const last = steps[steps.length - 1];
    const resumed = await spawnCli(['train', '--resume', run, '--steps', String(last + 5), '--threads', '2', '--no-progress']);
    expect(resumed.code, resumed.stderr).to.equal(0);
    const after = loggedSteps(run);
    expect(new Set(after).size).to.equal(after.length);
    expect(after[after.length - 1]).to.equal(last + 5);
    expect(existsSync(lockDir(run)), 'released at the end').to.equal(false);
  });

  it('SIGKILL of the holder: the next resume takes the lock over with one warning line and finishes', async () => {
    const run = join(dir, 'run');
    let pid = 0;
    const killed = await runCli(dir, longRun(), [], (stdout, child) => {
      if (pid === 0 && /step \d+\/4000/.test(stdout) && existsSync(join(run, 'checkpoint-00000100.safetensors'))) {
        pid = child.pid!;
        child.kill('SIGKILL');
      }
    });
    expect(killed.code).to.equal(null);
    expect(existsSync(lockDir(run)), 'a SIGKILL leaves the lock behind').to.equal(true);
    expect(JSON.parse(readFileSync(holderFile(run), 'utf8'))).to.include({ pid, host: hostname() });
    const resumed = await spawnCli(['train', '--resume', run, '--steps', '150', '--threads', '2', '--no-progress']);
    expect(resumed.code, resumed.stderr).to.equal(0);
    const warnings = resumed.stderr.split('\n').filter((l) => l.startsWith('warning: taking over'));
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(new RegExp(`^warning: taking over the lock of ${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} from pid ${pid} on ${hostname()}, since \\S+: that process is gone$`));
    expect(existsSync(lockDir(run))).to.equal(false);
  });

  const exits: Array<[string, (run: string) => Promise<{ code: number | null }>, number]> = [
    ['a failed step (the model throws)', (run) => runCli(join(run, '..'), faultConfig({ sentinel: 5, fault: 'throw' }, { steps: 50 })), 1],
    [
      'Ctrl-C twice (process.exit in the middle of a run)',
      (run) => {
        let sent = 0;
        return runCli(join(run, '..'), longRun({ checkpointEvery: 1 }), [], (stdout, child) => {
          if (sent === 0 && running.test(stdout)) {
            sent = 1;
            child.stderr!.on('data', (d: Buffer) => {
              if (sent === 1 && /finishing this step/.test(d.toString())) {
                sent = 2;
                child.kill('SIGINT');
              }
            });
            child.kill('SIGINT');
          }
        });
      },
      130,
    ],
  ];
  for (const [how, go, code] of exits) {
    it(`released on every way out: ${how}`, async () => {
      const run = join(dir, 'run');
      const r = await go(run);
      expect(r.code).to.equal(code);
      expect(existsSync(lockDir(run))).to.equal(false);
      expect(existsSync(holderFile(run))).to.equal(false);
    });
  }

  it('a config error touches nothing: a new directory is not left behind', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...faultConfig({}), steps: 'many' }));
    const r = await spawnCli(['train', '--config', bad, '--out', join(dir, 'never'), '--no-progress']);
    expect(r.code).to.equal(1);
    expect(existsSync(join(dir, 'never'))).to.equal(false);
  });

  describe('RunLock', () => {
    it('a lock held on another host, refreshed recently, is refused naming that host', async () => {
      mkdirSync(lockDir(dir));
      writeFileSync(holderFile(dir), JSON.stringify({ pid: 4242, host: 'elsewhere', since: '2026-11-30T10:00:00.000Z', command: 'shardtrain train' }));
      const err = await RunLock.acquire(dir, () => expect.fail('no warning expected')).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(RunDirLockedError);
      expect((err as Error).message).to.equal(`run directory ${dir} is in use by pid 4242 on elsewhere since 2026-11-30T10:00:00.000Z (shardtrain train); wait for it to end, or choose another directory`);
      expect(existsSync(lockDir(dir)), 'the holder keeps its lock').to.equal(true);
    });

    it('a lock not refreshed for over 60 s (power loss, another host) is taken over with a warning', async () => {
      mkdirSync(lockDir(dir));
      writeFileSync(holderFile(dir), JSON.stringify({ pid: 4242, host: 'elsewhere', since: '2026-11-30T10:00:00.000Z', command: 'shardtrain train' }));
      const old = new Date(Date.now() - 120_000);
      utimesSync(lockDir(dir), old, old);
      const warnings: string[] = [];
      const lock = await RunLock.acquire(dir, (l) => warnings.push(l));
      try {
        expect(warnings).to.deep.equal([`warning: taking over the lock of ${dir} from pid 4242 on elsewhere, since 2026-11-30T10:00:00.000Z: not refreshed for over 60 s`]);
        expect(JSON.parse(readFileSync(holderFile(dir), 'utf8'))).to.include({ pid: process.pid, host: hostname() });
      } finally {
        await lock.release();
      }
      expect(existsSync(lockDir(dir))).to.equal(false);
    });

    it('a lock of a dead pid on this host is taken over at once', async () => {
      const pid = deadPid();
      mkdirSync(lockDir(dir));
      writeFileSync(holderFile(dir), JSON.stringify({ pid, host: hostname(), since: '2026-11-30T10:00:00.000Z', command: 'x' }));
      const warnings: string[] = [];
      const lock = await RunLock.acquire(dir, (l) => warnings.push(l));
      await lock.release();
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.include(`from pid ${pid} on ${hostname()}`).and.include('that process is gone');
    });

    it('the same directory twice in one process: the second is refused (and names this process)', async () => {
      const lock = await RunLock.acquire(dir, () => undefined);
      try {
        const err = await RunLock.acquire(dir, () => undefined).then(() => null, (e: unknown) => e);
        expect((err as Error).message).to.include(`is in use by pid ${process.pid} on ${hostname()}`);
      } finally {
        await lock.release();
      }
    });

    it('compare --out is locked too: a compare into a directory in use is refused before any run', async () => {
      const out = join(dir, 'compare');
      const lock = await RunLock.acquire(out, () => undefined);
      try {
        const err = await runCompare({ configPath: join(root, 'config/char-lm.json'), conventions: ['pytorch'], weightDecays: [0], seeds: 1, steps: 2, out, log: () => undefined }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(RunDirLockedError);
        expect((err as Error).message).to.include(`run directory ${out} is in use by pid ${process.pid}`);
      } finally {
        await lock.release();
      }
      expect(existsSync(out), 'the directory the lock made, still empty, is removed on release').to.equal(false);
    });
  });
});
