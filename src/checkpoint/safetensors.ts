// The safetensors format, and nothing of shardtrain's own rules (those are in checkpoint.ts): an 8-byte
// little-endian header length, a JSON header (padded with spaces to a multiple of 8: aligned data), then
// the raw little-endian data, tensor after tensor. The header maps each tensor name to
// {dtype, shape, data_offsets: [begin, end)} relative to the data section, plus an optional __metadata__
// object of strings. shardtrain reads and writes float32 ("F32") only. Big tensors are read and written in
// pieces (no Buffer can hold more than 4 GiB).

import { fstatSync, openSync, closeSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { showValue } from '../util/one-line.js';

/** Header bytes we accept when reading (safetensors itself caps it at 100 MB). */
const kMaxHeaderBytes = 100_000_000;
/** Largest piece read or written in one call. */
export const kIoChunkBytes = 1 << 26;

export interface HeaderEntry {
  readonly dtype: string;
  readonly shape: number[];
  readonly data_offsets: [number, number];
}

export interface SafetensorsHeader {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, HeaderEntry>;
  /** Byte where the data section starts. */
  readonly dataStart: number;
}

/** A file that is not (or no longer) valid safetensors; `detail` says what, without the path. */
export class SafetensorsError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

export function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('safetensors files are little-endian; this machine is big-endian');
}

/** Bytes per element of every safetensors dtype. */
export const kDtypeBytes: Readonly<Record<string, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
});

/** What shardtrain writes: float32 (parameters, moments), int32 (token ids of exported data). */
export type WrittenDtype = 'F32' | 'I32';

/**
 * The bytes before the data: length, then the JSON header whose tensors (float32 unless they say) are laid
 * end to end in the order given. Returns the header and the data section's size.
 */
export function encodeHeader(
  metadata: Readonly<Record<string, string>>,
  tensors: readonly { readonly name: string; readonly shape: readonly number[]; readonly dtype?: WrittenDtype }[],
): { head: Buffer; dataBytes: number } {
  // __metadata__ first: a reader that looks for one of its keys finds it before any tensor name.
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = 4 * t.shape.reduce((a, d) => a * d, 1);
    header[t.name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(head.length - 8), 0);
  head.write(json, 8, 'utf8');
  return { head, dataBytes: offset };
}

/** A 4-byte typed array's bytes in pieces of at most kIoChunkBytes, for a streaming writer. */
export function* bytePieces(values: Float32Array | Int32Array): Generator<Uint8Array> {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  for (let at = 0; at < bytes.length; at += kIoChunkBytes) yield bytes.subarray(at, Math.min(bytes.length, at + kIoChunkBytes));
}

/** Read `bytes.length` bytes at `position`, or fail naming the file. */
export function readFully(fd: number, path: string, bytes: Uint8Array, position: number): void {
  for (let at = 0; at < bytes.length; ) {
    const got = readSync(fd, bytes, at, Math.min(kIoChunkBytes, bytes.length - at), position + at);
    if (got === 0) throw new SafetensorsError(path, 'truncated while reading');
    at += got;
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** One tensor's header entry, checked field by field: the header is untrusted JSON. */
function checkEntry(path: string, name: string, e: unknown, dtypes: readonly string[]): HeaderEntry {
  const tensor = `tensor ${showValue(name)}`;
  if (!isPlainObject(e)) throw new SafetensorsError(path, `${tensor}: header entry is ${showValue(e)}, expected {dtype, shape, data_offsets}`);
  const { dtype, shape, data_offsets: offsets } = e;
  if (typeof dtype !== 'string' || !dtypes.includes(dtype)) {
    throw new SafetensorsError(path, `${tensor} has dtype ${showValue(dtype)}, expected ${dtypes.length === 1 ? `"${dtypes[0]}"` : `one of ${dtypes.map((d) => `"${d}"`).join(', ')}`}`);
  }
  const size = kDtypeBytes[dtype];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(path, `${tensor}: shape ${showValue(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
    throw new SafetensorsError(path, `${tensor}: data_offsets ${showValue(offsets)} is not [begin, end] with 0 <= begin <= end`);
  }
  // A product of safe integers may round; it then cannot equal a safe byte count, which is all we need.
  const count = (shape as number[]).reduce((a, d) => a * d, 1);
  if (offsets[1] - offsets[0] !== size * count) {
    throw new SafetensorsError(path, `${tensor}: shape ${showValue(shape)} needs ${size * count} bytes, its data_offsets ${showValue(offsets)} hold ${offsets[1] - offsets[0]}`);
  }
  return { dtype, shape: shape as number[], data_offsets: offsets as [number, number] };
}

/** __metadata__: absent, or an object of strings. */
function checkMetadata(path: string, meta: unknown): Record<string, string> {
  if (meta === undefined) return {};
  if (!isPlainObject(meta)) throw new SafetensorsError(path, `__metadata__ is ${showValue(meta)}, expected an object of strings`);
  for (const [key, value] of Object.entries(meta)) {
    if (typeof value !== 'string') throw new SafetensorsError(path, `__metadata__.${key} is ${showValue(value)}, expected a string`);
  }
  return meta as Record<string, string>;
}

/**
 * Read and check the header: sizes, JSON, dtypes, shapes, contiguous offsets, and the file length. Only
 * `dtypes` are accepted (shardtrain's own files: float32).
 */
export function readSafetensorsHeader(path: string, dtypes: readonly string[] = ['F32']): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SafetensorsError(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new SafetensorsError(path, `only ${size} bytes: not a safetensors file`);
    const lenBuf = Buffer.alloc(8);
    readFully(fd, path, lenBuf, 0);
    const n = lenBuf.readBigUInt64LE(0);
    // Checked before anything that size is allocated: the length is the first thing a corrupt file lies about.
    if (n > BigInt(Math.min(kMaxHeaderBytes, size - 8))) throw new SafetensorsError(path, `header length ${n} does not fit in the file (${size} bytes): corrupt or truncated`);
    const headBuf = Buffer.alloc(Number(n));
    readFully(fd, path, headBuf, 8);
    let raw: unknown;
    try {
      raw = JSON.parse(headBuf.toString('utf8'));
    } catch {
      throw new SafetensorsError(path, 'header is not valid JSON: corrupt file');
    }
    if (!isPlainObject(raw)) throw new SafetensorsError(path, `header is ${showValue(raw, 20)}, expected a JSON object`);
    const { __metadata__: meta, ...rest } = raw;
    const metadata = checkMetadata(path, meta);
    const entries = Object.entries(rest).map(([name, e]) => [name, checkEntry(path, name, e, dtypes)] as const);
    const sorted = [...entries].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1]);
    let end = 0;
    for (const [name, h] of sorted) {
      if (h.data_offsets[0] !== end) throw new SafetensorsError(path, `tensor ${showValue(name)} starts at byte ${h.data_offsets[0]}, expected ${end}: offsets are not contiguous`);
      end = h.data_offsets[1];
    }
    const dataStart = 8 + Number(n);
    if (dataStart + end !== size) {
      throw new SafetensorsError(path, `${size < dataStart + end ? 'truncated' : 'has trailing bytes'}: header describes ${dataStart + end} bytes, file has ${size}`);
    }
    return { path, metadata, tensors: new Map(entries), dataStart };
  } finally {
    closeSync(fd);
  }
}

/** Fill `parts` (in order, together the tensor's length) with float32 tensor `name` of an open file. */
export function readTensorInto(fd: number, header: SafetensorsHeader, name: string, parts: readonly Float32Array[]): void {
  assertLittleEndian();
  const h = header.tensors.get(name);
  if (!h) throw new SafetensorsError(header.path, `no tensor ${showValue(name)}`);
  if (h.dtype !== 'F32') throw new SafetensorsError(header.path, `tensor ${showValue(name)} is ${h.dtype}, not F32`);
  let pos = header.dataStart + h.data_offsets[0];
  for (const part of parts) {
    readFully(fd, header.path, new Uint8Array(part.buffer, part.byteOffset, part.byteLength), pos);
    pos += part.byteLength;
  }
}

/** Read one tensor of the file into a new Float32Array. */
export function readSafetensor(header: SafetensorsHeader, name: string): Float32Array {
  const h = header.tensors.get(name);
  if (!h) throw new SafetensorsError(header.path, `no tensor ${showValue(name)}`);
  const out = new Float32Array((h.data_offsets[1] - h.data_offsets[0]) / 4);
  const fd = openSync(header.path, 'r');
  try {
    readTensorInto(fd, header, name, [out]);
  } finally {
    closeSync(fd);
  }
  return out;
}
