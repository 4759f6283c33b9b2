// One writer per run directory. A `train` (or a compare into --out) holds a lock in its directory for its
// whole life, so a second process on the same directory is refused at once instead of interleaving metrics
// and rotating checkpoints away under the first.
//
// The lock is proper-lockfile's: an atomic mkdir of `.shardtrain.lock`, whose mtime the holder refreshes
// every few seconds, so a lock left by a dead holder goes stale (kStaleMs) and is taken over, on any host
// and after a power loss. Beside it, `.shardtrain.lock.json` says who holds it (pid, host, since, command),
// for the refusal message, and lets a run on the same host take over at once from a holder whose pid is gone
// (SIGKILL) instead of waiting for staleness. The lock is released on every way out: by release() at the end
// or on an error, and by exit hooks (proper-lockfile's and ours) when the process exits (a second Ctrl-C
// calls process.exit); only SIGKILL and power loss leave it behind.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { isProcessAlive } from '../util/process-alive.js';
import { oneLine } from '../util/one-line.js';

const kLockDir = '.shardtrain.lock';
const kHolderFile = '.shardtrain.lock.json';
/** A lock whose mtime is older than this is stale (its holder stopped refreshing it: dead, or frozen this long). */
const kStaleMs = 60_000;

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  /** ISO time the lock was taken. */
  readonly since: string;
  readonly command: string;
}

/** Another live process holds the run directory. */
export class RunDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | null,
  ) {
    const who = holder ? `pid ${holder.pid} on ${holder.host} since ${holder.since} (${holder.command})` : 'another process (it has not said which yet)';
    super(oneLine(`run directory ${dir} is in use by ${who}; wait for it to end, or choose another directory`));
    this.name = 'RunDirLockedError';
  }
}

function readHolder(dir: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(join(dir, kHolderFile), 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string' || typeof h.since !== 'string') return null;
    return { pid: h.pid, host: h.host, since: h.since, command: typeof h.command === 'string' ? h.command : '' };
  } catch {
    return null;
  }
}

function describe(holder: LockHolder | null): string {
  return holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.since}` : 'an unknown process';
}

export class RunLock {
  #compromised: Error | null = null;
  #released = false;
  readonly #release: () => Promise<void>;
  /** On process.exit (a second Ctrl-C) the holder file goes with the lock (proper-lockfile removes the lock itself). */
  readonly #onExit = (): void => {
    if (!this.#compromised) rmSync(join(this.dir, kHolderFile), { force: true });
  };

  private constructor(
    readonly dir: string,
    /** The directory did not exist before the lock: release() removes it again if it is still empty. */
    readonly created: boolean,
    release: () => Promise<void>,
  ) {
    this.#release = release;
    process.on('exit', this.#onExit);
  }

  /**
   * Take the lock of `dir` (created if missing), or throw RunDirLockedError naming the holder. A lock whose
   * holder is dead is taken over with one `warn` line.
   */
  static async acquire(dir: string, warn: (line: string) => void): Promise<RunLock> {
    const created = !existsSync(dir);
    mkdirSync(dir, { recursive: true });
    const lockDir = join(dir, kLockDir);
    const holder = readHolder(dir);
    if (existsSync(lockDir)) {
      const deadHere = holder !== null && holder.host === hostname() && holder.pid !== process.pid && !isProcessAlive(holder.pid);
      const stale = Date.now() - statSync(lockDir).mtimeMs > kStaleMs;
      if (deadHere || stale) {
        warn(`warning: taking over the lock of ${dir} from ${describe(holder)}: ${deadHere ? 'that process is gone' : `not refreshed for over ${kStaleMs / 1000} s`}`);
        // proper-lockfile would remove a stale lock itself; a dead holder's is not stale yet, so remove it here.
        if (deadHere) rmSync(lockDir, { recursive: true, force: true });
      }
    }
    let lock!: RunLock;
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(dir, {
        lockfilePath: lockDir,
        stale: kStaleMs,
        retries: 0,
        // Another process removed our lock, or we were frozen past kStaleMs and it was taken over: stop writing.
        onCompromised: (err) => (lock.#compromised = err),
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') throw new RunDirLockedError(dir, readHolder(dir));
      throw err;
    }
    const mine: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
    writeFileSync(join(dir, kHolderFile), `${JSON.stringify(mine)}\n`);
    lock = new RunLock(dir, created, release);
    return lock;
  }

  /** Throw if the lock is no longer ours: call before writing into the directory. */
  assertHeld(): void {
    if (this.#compromised) throw new Error(`the lock on run directory ${this.dir} was lost (${this.#compromised.message}): another process may be writing there; stopping without writing`);
    if (this.#released) throw new Error(`the lock on run directory ${this.dir} was released`);
  }

  /** Release the lock (safe to call twice). A directory the lock created and nothing else filled goes too. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    process.off('exit', this.#onExit);
    // A lost lock is someone else's now: leave their lock and their holder file alone.
    if (this.#compromised) return;
    rmSync(join(this.dir, kHolderFile), { force: true });
    await this.#release();
    if (this.created && existsSync(this.dir) && readdirSync(this.dir).length === 0) rmdirSync(this.dir);
  }
}
