// The checkpoints of a run directory: checkpoint-<step, zero-padded to 8>.safetensors, the newest keepLast
// of them kept. Only complete files carry that name (checkpoint.ts writes a hidden temp file and renames
// it), so a listing never sees a partial write; a resume still verifies each candidate (header, both
// checksums, the step against the name) and falls back to the next older one, because a disk can damage
// a complete file too.

import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '../util/process-alive.js';
import { CheckpointError, parseCheckpointTempName, type CheckpointHeader } from './checkpoint.js';
import { Checkpoint } from './open.js';

const kNamePattern = /^checkpoint-([0-9]{8,})\.safetensors$/;

export function checkpointFileName(step: number): string {
  return `checkpoint-${String(step).padStart(8, '0')}.safetensors`;
}

export interface StoredCheckpoint {
  readonly path: string;
  /** The step in the name. */
  readonly step: number;
}

/** The checkpoints in `dir`, newest first. */
export function listCheckpoints(dir: string): StoredCheckpoint[] {
  return readdirSync(dir)
    .flatMap((file) => {
      const m = kNamePattern.exec(file);
      return m ? [{ path: join(dir, file), step: Number(m[1]) }] : [];
    })
    .sort((a, b) => b.step - a.step);
}

declare const verified: unique symbol;
/** A checkpoint's header, once verifyCheckpointFile has checked the file (0.1's handle; now Checkpoint). */
export type VerifiedCheckpoint = CheckpointHeader & { readonly [verified]: true };

/**
 * Header, metadata and both checksums checked (and the step, when the name gives one); throws CheckpointError.
 * The header alone, for callers of 0.1; Checkpoint.open gives the whole opened checkpoint.
 */
export function verifyCheckpointFile(path: string, step?: number): VerifiedCheckpoint {
  return Checkpoint.open(path, step).header as VerifiedCheckpoint;
}

/** The newest checkpoint in `dir` that verifies; each newer one that does not costs one warning line. */
export function newestValidCheckpoint(dir: string, warn: (line: string) => void): Checkpoint {
  const all = listCheckpoints(dir);
  for (const { path, step } of all) {
    try {
      return Checkpoint.open(path, step);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      warn(`warning: ${err.message}; trying the next older checkpoint`);
    }
  }
  throw new Error(`--resume ${dir}: ${all.length === 0 ? 'no checkpoint-<step>.safetensors in it' : `none of its ${all.length} checkpoints verifies`}`);
}

/**
 * A checkpoint named by the user: a file (verified), or a run directory (its newest checkpoint that verifies,
 * a warning line per newer one that does not). `what` prefixes the message when `source` does not exist.
 */
export function resolveCheckpoint(source: string, warn: (line: string) => void, what: string): Checkpoint {
  let isDir: boolean;
  try {
    isDir = statSync(source).isDirectory();
  } catch {
    throw new Error(`${what}${source}: no such file or directory`);
  }
  return isDir ? newestValidCheckpoint(source, warn) : Checkpoint.open(source);
}

/**
 * Called once the checkpoint of `savedStep` is renamed and its directory fsync'd: keep it and the
 * keepLast − 1 newest older ones. Checkpoints of later steps go too: they belong to a run this one resumed
 * before (from an older checkpoint), whose metrics past the resume step were dropped as well.
 */
export function pruneCheckpoints(dir: string, savedStep: number, keepLast: number): void {
  let kept = 0;
  for (const { path, step } of listCheckpoints(dir)) {
    if (step === savedStep || (step < savedStep && kept < keepLast)) kept++;
    else rmSync(path, { force: true });
  }
}

/**
 * Remove the temp files that writers killed mid-write left behind. A temp file names its writer's pid: one
 * of a live process (another run in this directory) is left alone; one of ours is stale, as every save is
 * awaited before this runs.
 */
export function removeStaleTemps(dir: string): void {
  for (const file of readdirSync(dir)) {
    const temp = parseCheckpointTempName(file);
    if (temp && kNamePattern.test(temp.target) && (temp.pid === process.pid || !isProcessAlive(temp.pid))) rmSync(join(dir, file), { force: true });
  }
}

/** Save as checkpoint-<step> in `dir` (atomic), then prune to keepLast and clean up dead writers' temp files. */
export async function saveInRunDir(dir: string, trainer: { readonly globalStep: number; saveCheckpoint(path: string): Promise<void> }, keepLast: number): Promise<string> {
  const step = trainer.globalStep;
  const path = join(dir, checkpointFileName(step));
  await trainer.saveCheckpoint(path);
  pruneCheckpoints(dir, step, keepLast);
  removeStaleTemps(dir);
  return path;
}
