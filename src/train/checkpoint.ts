// Checkpoints in safetensors: an 8-byte little-endian header length, a JSON header (padded with spaces to
// a multiple of 8), then raw little-endian data. Tensors: parameters under their own names, Adam's moments
// as optimizer.m.<name> / optimizer.v.<name> (and optimizer.vmax.<name> with AMSGrad); __metadata__ (all
// strings, as the format requires) holds step, lr, convention, config and data position.
// Written region by region and shard by shard straight from the shared memories (no Buffer holds the whole
// model, so nothing is limited to 4 GiB), into a temp file, fsync'd, then renamed over the target.

import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { TensorView } from '../memory/tensor-views.js';
import type { TensorSpec } from './model-module.js';

export const kCheckpointFormat = 'shardtrain-1';
/** Header bytes we accept when reading (safetensors itself caps it at 100 MB). */
const kMaxHeaderBytes = 100_000_000;
/** Largest piece read or written in one call. */
const kIoChunkBytes = 1 << 26;

export interface CheckpointMetadata {
  readonly step: number;
  readonly lr: number;
  readonly convention: string;
  /** The training config (JSON). */
  readonly config: unknown;
  /** Where the data order stands (JSON): seed, position, epoch, offset. */
  readonly data: unknown;
}

export type StateName = 'params' | 'm' | 'v' | 'vmax';

/** Name of a tensor in the file. */
export function fileTensorName(state: StateName, name: string): string {
  return state === 'params' ? name : `optimizer.${state}.${name}`;
}

export interface HeaderEntry {
  readonly dtype: string;
  readonly shape: number[];
  readonly data_offsets: [number, number];
}

export interface CheckpointHeader {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, HeaderEntry>;
  /** Byte where the data section starts. */
  readonly dataStart: number;
}

function viewParts(view: TensorView): readonly Float32Array[] {
  return view instanceof Float32Array ? [view] : view.parts;
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('checkpoints are little-endian float32; this machine is big-endian');
}

export interface CheckpointStates {
  readonly tensors: readonly TensorSpec[];
  /** Live views per state, per tensor name. */
  readonly states: Partial<Record<StateName, Readonly<Record<string, TensorView>>>>;
  readonly metadata: CheckpointMetadata;
}

let tempInProgress: string | null = null;

/** The temp file a checkpoint is being written to, or null: a fast exit (second Ctrl-C) removes it. */
export function checkpointTempInProgress(): string | null {
  return tempInProgress;
}

/** Write `path` atomically: temp file in the same directory, fsync, rename (then fsync the directory). */
export function writeCheckpoint(path: string, { tensors, states, metadata }: CheckpointStates): void {
  assertLittleEndian();
  const order = (['params', 'm', 'v', 'vmax'] as const).filter((s) => states[s] !== undefined);
  const header: Record<string, unknown> = {
    __metadata__: {
      format: kCheckpointFormat,
      step: String(metadata.step),
      lr: String(metadata.lr),
      convention: metadata.convention,
      config: JSON.stringify(metadata.config),
      data: JSON.stringify(metadata.data),
    },
  };
  let offset = 0;
  for (const state of order) {
    for (const t of tensors) {
      header[fileTensorName(state, t.name)] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.size] };
      offset += 4 * t.size;
    }
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(head.length - 8), 0);
  head.write(json, 8, 'utf8');

  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  tempInProgress = tmp;
  try {
    writeSync(fd, head);
    for (const state of order) {
      const views = states[state]!;
      for (const t of tensors) {
        for (const part of viewParts(views[t.name])) {
          // One piece per segment (tensor ∩ shard): data goes from each shard's memory to the file.
          const bytes = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
          for (let at = 0; at < bytes.length; at += kIoChunkBytes) writeSync(fd, bytes, at, Math.min(kIoChunkBytes, bytes.length - at));
        }
      }
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    tempInProgress = null;
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  tempInProgress = null;
  try {
    const dir = openSync(dirname(path), 'r');
    fsyncSync(dir);
    closeSync(dir);
  } catch {
    // some file systems refuse fsync on a directory; the rename itself is atomic
  }
}

class CheckpointError extends Error {
  constructor(path: string, message: string) {
    super(`checkpoint ${path}: ${message}`);
    this.name = 'CheckpointError';
  }
}

/** Read and check the header: sizes, JSON, dtypes, shapes, contiguous offsets, and the file length. */
export function readCheckpointHeader(path: string): CheckpointHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new CheckpointError(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new CheckpointError(path, `only ${size} bytes: not a safetensors file`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(Math.min(kMaxHeaderBytes, size - 8))) throw new CheckpointError(path, `header length ${n} does not fit in the file (${size} bytes): corrupt or truncated`);
    const headBuf = Buffer.alloc(Number(n));
    readSync(fd, headBuf, 0, headBuf.length, 8);
    let raw: unknown;
    try {
      raw = JSON.parse(headBuf.toString('utf8'));
    } catch {
      throw new CheckpointError(path, 'header is not valid JSON: corrupt file');
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(path, 'header is not a JSON object');
    const { __metadata__: meta = {}, ...rest } = raw as Record<string, unknown>;
    const entries = Object.entries(rest).map(([name, e]) => {
      const h = e as HeaderEntry;
      if (h === null || typeof h !== 'object' || !Array.isArray(h.shape) || !Array.isArray(h.data_offsets) || h.data_offsets.length !== 2) {
        throw new CheckpointError(path, `tensor "${name}" has a malformed header entry`);
      }
      if (h.dtype !== 'F32') throw new CheckpointError(path, `tensor "${name}" has dtype ${String(h.dtype)}, expected F32`);
      const count = h.shape.reduce((a, d) => a * d, 1);
      if (!h.shape.every((d) => Number.isInteger(d) && d >= 0) || h.data_offsets[1] - h.data_offsets[0] !== 4 * count) {
        throw new CheckpointError(path, `tensor "${name}": shape [${h.shape}] does not match its data_offsets [${h.data_offsets}]`);
      }
      return [name, h] as const;
    });
    const sorted = [...entries].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
    let end = 0;
    for (const [name, h] of sorted) {
      if (h.data_offsets[0] !== end) throw new CheckpointError(path, `tensor "${name}" starts at byte ${h.data_offsets[0]}, expected ${end}: offsets are not contiguous`);
      end = h.data_offsets[1];
    }
    const dataStart = 8 + Number(n);
    if (dataStart + end !== size) {
      throw new CheckpointError(path, `${size < dataStart + end ? 'truncated' : 'has trailing bytes'}: header describes ${dataStart + end} bytes, file has ${size}`);
    }
    return { path, metadata: meta as Record<string, string>, tensors: new Map(entries), dataStart };
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
  if (!Number.isInteger(step) || step < 0) throw new CheckpointError(header.path, `__metadata__.step must be a non-negative integer, got ${m.step}`);
  return { format: m.format ?? '', step, lr: Number(m.lr), convention: m.convention ?? '', config: json('config'), data: json('data') };
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
  assertLittleEndian();
  const fd = openSync(header.path, 'r');
  try {
    for (const [state, views] of Object.entries(states) as [StateName, Readonly<Record<string, TensorView>>][]) {
      for (const t of tensors) {
        let pos = header.dataStart + header.tensors.get(fileTensorName(state, t.name))!.data_offsets[0];
        for (const part of viewParts(views[t.name])) {
          const bytes = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
          for (let at = 0; at < bytes.length; ) {
            const got = readSync(fd, bytes, at, Math.min(kIoChunkBytes, bytes.length - at), pos);
            if (got === 0) throw new CheckpointError(header.path, 'truncated while reading');
            at += got;
            pos += got;
          }
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Read one tensor of the file into a new Float32Array (for inspect and tests). */
export function readTensor(header: CheckpointHeader, name: string): Float32Array {
  const h = header.tensors.get(name);
  if (!h) throw new CheckpointError(header.path, `no tensor "${name}"`);
  const out = new Float32Array((h.data_offsets[1] - h.data_offsets[0]) / 4);
  const fd = openSync(header.path, 'r');
  try {
    readSync(fd, new Uint8Array(out.buffer), 0, out.byteLength, header.dataStart + h.data_offsets[0]);
  } finally {
    closeSync(fd);
  }
  return out;
}
