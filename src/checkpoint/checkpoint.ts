// shardtrain's checkpoints: safetensors files (the format is in safetensors.ts) with shardtrain's rules on
// top. Tensors: parameters under their own names, Adam's moments as optimizer.m.<name> / optimizer.v.<name>
// (and optimizer.vmax.<name> with AMSGrad); __metadata__ holds step, lr, convention, config, data position
// and two CRC-32s (zlib's, 8 lowercase hex digits): data_crc32 over the data section, and header_crc32 over
// the 8-byte length and the header with both CRC values read as 00000000 (a flipped digit in step or lr still
// parses, and would silently resume a different run).
// Written region by region and shard by shard straight from the shared memories (no Buffer holds the whole
// model, so nothing is limited to 4 GiB), into a temp file, fsync'd, then renamed over the target.

import { closeSync, fstatSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { TensorSpec } from '../memory/layout.js';
import type { StateName } from '../memory/shard-states.js';
import { tensorParts, type TensorView } from '../memory/tensor-views.js';
import { oneLine, showValue } from '../util/one-line.js';
import {
  assertLittleEndian,
  bytePieces,
  encodeHeader,
  kIoChunkBytes,
  readFully,
  readSafetensor,
  readSafetensorsHeader,
  readTensorInto,
  SafetensorsError,
  type SafetensorsHeader,
} from './safetensors.js';

/** shardtrain-2 added the checksums; shardtrain-1 files (never released) are refused by verifyCheckpoint. */
export const kCheckpointFormat = 'shardtrain-2';
const kHeaderCrcKey = 'header_crc32';
const kDataCrcKey = 'data_crc32';
const kCrcPlaceholder = '00000000';
/**
 * Test hook, opt-in: a stderr line when a write starts and when its rename is done, so the SIGKILL test
 * (test/checkpoint-crash.test.ts) can aim its kills at the writes rather than hope to hit a few ms out of
 * each step. It only prints: the write is the same with or without it.
 */
const kTraceWrites = process.env.SHARDTRAIN_TRACE_CHECKPOINT === '1';
export const kTracePrefix = 'shardtrain-trace: checkpoint';

export interface CheckpointMetadata {
  readonly step: number;
  /** The lr of the last step (NaN at step 0: there was none). */
  readonly lr: number;
  readonly convention: string;
  /** The training config (JSON). */
  readonly config: unknown;
  /** Where the data order stands (JSON): seed, position, epoch, offset. */
  readonly data: unknown;
}

/** Name of a tensor in the file. */
export function fileTensorName(state: StateName, name: string): string {
  return state === 'params' ? name : `optimizer.${state}.${name}`;
}

/** A checkpoint file's header, as read (and checked) by readCheckpointHeader. */
export type CheckpointHeader = SafetensorsHeader;

export interface CheckpointStates {
  readonly tensors: readonly TensorSpec[];
  /** Live views per state, per tensor name. */
  readonly states: Partial<Record<StateName, Readonly<Record<string, TensorView>>>>;
  readonly metadata: CheckpointMetadata;
}

/** Temp file of a write to `path` by process `pid`: hidden, in the same directory (so rename is atomic). */
export function checkpointTempPath(path: string, pid = process.pid): string {
  return join(dirname(path), `.${basename(path)}.${pid}.tmp`);
}

/** The target name and writer pid of a temp file's name, or null when `file` is not one. */
export function parseCheckpointTempName(file: string): { target: string; pid: number } | null {
  const m = /^\.(.+)\.(\d+)\.tmp$/.exec(file);
  return m ? { target: m[1], pid: Number(m[2]) } : null;
}

function hex32(crc: number): string {
  return crc.toString(16).padStart(8, '0');
}

/** Byte offset of the value in `"key":"…"` at the key's first occurrence in `bytes`, or -1. */
function crcValueOffset(bytes: Buffer, key: string): number {
  const at = bytes.indexOf(`"${key}":"`, 0, 'latin1');
  return at < 0 ? -1 : at + key.length + 4;
}

/**
 * Write `path` atomically: temp file in the same directory, fsync, rename (then fsync the directory). The
 * writes are asynchronous, one piece of ≤ 64 MiB at a time, so that a second Ctrl-C is heard during a long
 * save (gigabytes for a large model) and can exit at once: the temp file it leaves is never taken for a
 * checkpoint, and the next run in the directory removes it. The caller must not change the states until
 * the returned promise settles.
 */
export async function writeCheckpoint(path: string, { tensors, states, metadata }: CheckpointStates): Promise<void> {
  assertLittleEndian();
  const order = (['params', 'm', 'v', 'vmax'] as const).filter((s) => states[s] !== undefined);
  // The CRC keys first in __metadata__: their first occurrence in the header is theirs, before any tensor
  // name or config text that could hold the same characters.
  const { head } = encodeHeader(
    {
      [kHeaderCrcKey]: kCrcPlaceholder,
      [kDataCrcKey]: kCrcPlaceholder,
      format: kCheckpointFormat,
      step: String(metadata.step),
      lr: String(metadata.lr),
      convention: metadata.convention,
      config: JSON.stringify(metadata.config),
      data: JSON.stringify(metadata.data),
    },
    order.flatMap((state) => tensors.map((t) => ({ name: fileTensorName(state, t.name), shape: t.shape }))),
  );
  const headerCrc = crc32(head);

  const tmp = checkpointTempPath(path);
  if (kTraceWrites) process.stderr.write(`${kTracePrefix} start ${tmp}\n`);
  const file = await open(tmp, 'w');
  try {
    await file.write(head);
    // The data CRC is computed while streaming (each piece hashed just before its write, while it is in
    // cache) and pwritten over its placeholder at the end: one pass over the shard memories instead of a
    // hashing pre-pass, and the temp file is not taken for a checkpoint before the rename anyway.
    let dataCrc = 0;
    for (const state of order) {
      const views = states[state]!;
      for (const t of tensors) {
        // Segment by segment (tensor ∩ shard): data goes from each shard's memory to the file.
        for (const part of tensorParts(views[t.name])) {
          for (const piece of bytePieces(part)) {
            dataCrc = crc32(piece, dataCrc);
            await file.write(piece);
          }
        }
      }
    }
    await file.write(hex32(headerCrc), crcValueOffset(head, kHeaderCrcKey), 'latin1');
    await file.write(hex32(dataCrc), crcValueOffset(head, kDataCrcKey), 'latin1');
    await file.sync();
  } catch (err) {
    await file.close();
    rmSync(tmp, { force: true });
    throw err;
  }
  await file.close();
  renameSync(tmp, path);
  try {
    const dir = openSync(dirname(path), 'r');
    fsyncSync(dir);
    closeSync(dir);
  } catch {
    // some file systems refuse fsync on a directory; the rename itself is atomic
  }
  if (kTraceWrites) process.stderr.write(`${kTracePrefix} done ${path}\n`);
}

/** Every problem with a checkpoint file: one line, naming the file. */
export class CheckpointError extends Error {
  constructor(path: string, message: string) {
    super(oneLine(`checkpoint ${path}: ${message}`));
    this.name = 'CheckpointError';
  }
}

/** A format error (safetensors.ts) as a checkpoint error: same words, prefixed with `checkpoint`. */
function asCheckpointError<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof SafetensorsError) throw new CheckpointError(err.path, err.detail);
    throw err;
  }
}

/** Read and check the header: sizes, JSON, dtypes, shapes, contiguous offsets, and the file length. */
export function readCheckpointHeader(path: string): CheckpointHeader {
  return asCheckpointError(() => readSafetensorsHeader(path));
}

/**
 * Check both CRC-32s against the file, in one pass over its bytes. A file without them (format
 * shardtrain-1, or a safetensors file from elsewhere) is refused: 0.1.0 is the first release, so no user has one.
 */
export function verifyCheckpoint(header: CheckpointHeader): void {
  const { path, metadata: m } = header;
  for (const key of [kHeaderCrcKey, kDataCrcKey]) {
    if (m[key] === undefined) throw new CheckpointError(path, `no __metadata__.${key}: a file without checksums (format ${showValue(m.format ?? null)}; shardtrain writes ${kCheckpointFormat}) is not loaded unverified`);
    if (!/^[0-9a-f]{8}$/.test(m[key])) throw new CheckpointError(path, `__metadata__.${key} is ${showValue(m[key])}, expected 8 lowercase hex digits`);
  }
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(header.dataStart); // at most 8 + 100 MB: checked by readCheckpointHeader
    asCheckpointError(() => readFully(fd, path, head, 0));
    for (const key of [kHeaderCrcKey, kDataCrcKey]) {
      const at = crcValueOffset(head, key);
      // Not at the key's first occurrence (a duplicated key, an escape): not as shardtrain wrote it.
      if (at < 0 || head.toString('latin1', at, at + 8) !== m[key]) throw new CheckpointError(path, `__metadata__.${key} is not where shardtrain writes it: the header was rewritten or is corrupt`);
      head.write(kCrcPlaceholder, at, 'latin1');
    }
    const headerCrc = hex32(crc32(head));
    if (headerCrc !== m[kHeaderCrcKey]) throw new CheckpointError(path, `header checksum mismatch (crc32 of the header is ${headerCrc}, __metadata__.${kHeaderCrcKey} says ${m[kHeaderCrcKey]}): corrupt file`);
    const size = fstatSync(fd).size;
    const chunk = Buffer.alloc(Math.min(kIoChunkBytes, size - header.dataStart));
    let dataCrc = 0;
    for (let pos = header.dataStart; pos < size; pos += chunk.length) {
      const piece = chunk.subarray(0, Math.min(chunk.length, size - pos));
      asCheckpointError(() => readFully(fd, path, piece, pos));
      dataCrc = crc32(piece, dataCrc);
    }
    if (hex32(dataCrc) !== m[kDataCrcKey]) {
      throw new CheckpointError(path, `data checksum mismatch (crc32 of the data section is ${hex32(dataCrc)}, __metadata__.${kDataCrcKey} says ${m[kDataCrcKey]}): corrupt or partly written file`);
    }
  } finally {
    closeSync(fd);
  }
}

/** Parsed metadata of a shardtrain checkpoint. */
export function checkpointMetadata(header: CheckpointHeader): CheckpointMetadata & { format: string } {
  const m = header.metadata;
  const num = (key: string): number => {
    const x = Number(m[key]);
    if (m[key] === undefined || !Number.isFinite(x)) throw new CheckpointError(header.path, `__metadata__.${key} is missing or not a number: not a shardtrain checkpoint`);
    return x;
  };
  const json = (key: string): unknown => {
    try {
      return JSON.parse(m[key] ?? '');
    } catch {
      throw new CheckpointError(header.path, `__metadata__.${key} is missing or not JSON: not a shardtrain checkpoint`);
    }
  };
  const step = num('step');
  // Digits only: Number() would also take ' 12', '0x0c' or '' (0) from a damaged file.
  if (!/^(0|[1-9][0-9]*)$/.test(m.step) || !Number.isSafeInteger(step)) throw new CheckpointError(header.path, `__metadata__.step must be a non-negative integer, got ${showValue(m.step)}`);
  // lr is the last step's: none before the first step, which a checkpoint of step 0 records as NaN.
  const lr = step === 0 && m.lr === 'NaN' ? Number.NaN : num('lr');
  return { format: m.format ?? '', step, lr, convention: m.convention ?? '', config: json('config'), data: json('data') };
}

/**
 * Check that the file holds exactly `tensors` (names and shapes) for every state in `states`, before
 * anything is copied; then copy each into its live views.
 */
export function checkCheckpointTensors(header: CheckpointHeader, tensors: readonly TensorSpec[], states: readonly StateName[]): void {
  const expected = new Set<string>();
  for (const state of states) {
    for (const t of tensors) {
      const name = fileTensorName(state, t.name);
      expected.add(name);
      const h = header.tensors.get(name);
      if (!h) throw new CheckpointError(header.path, `tensor "${name}" is missing: the checkpoint is from another model or optimizer`);
      if (h.shape.length !== t.shape.length || h.shape.some((d, i) => d !== t.shape[i])) {
        throw new CheckpointError(header.path, `tensor "${name}" has shape [${h.shape}], the model has [${t.shape}]`);
      }
    }
  }
  for (const name of header.tensors.keys()) {
    if (!expected.has(name)) throw new CheckpointError(header.path, `tensor "${name}" is not in this model: the checkpoint is from another model`);
  }
}

/** Copy the file's tensors into live views (call checkCheckpointTensors first). */
export function readCheckpointInto(header: CheckpointHeader, tensors: readonly TensorSpec[], states: Partial<Record<StateName, Readonly<Record<string, TensorView>>>>): void {
  const fd = openSync(header.path, 'r');
  try {
    for (const [state, views] of Object.entries(states) as [StateName, Readonly<Record<string, TensorView>>][]) {
      for (const t of tensors) asCheckpointError(() => readTensorInto(fd, header, fileTensorName(state, t.name), tensorParts(views[t.name])));
    }
  } finally {
    closeSync(fd);
  }
}

/** Read one tensor of the file into a new Float32Array (for inspect and tests). */
export function readTensor(header: CheckpointHeader, name: string): Float32Array {
  return asCheckpointError(() => readSafetensor(header, name));
}
