// Fuzz properties, shared by test/fuzz.test.ts (CI, ≥ 1,000 cases per target) and scripts/fuzz.ts (as many
// as asked). Each target feeds damaged input through a whole load path and accepts exactly two endings:
// success (for a checkpoint only with its original meaning), or the module's own error class with a message
// of one line that names the file (and the key, for configs). Anything else — a TypeError from a value of
// the wrong type, a RangeError from an allocation, a message split over lines, a slow case — fails.
// No chai here: the script runs these outside mocha.

import fc from 'fast-check';
import { deepStrictEqual, fail, ok } from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError,
  checkCheckpointTensors,
  checkpointMetadata,
  readCheckpointHeader,
  readCheckpointInto,
  verifyCheckpoint,
  writeCheckpoint,
  type CheckpointMetadata,
} from '../src/checkpoint/checkpoint.js';
import type { TensorSpec } from '../src/memory/layout.js';
import type { StateName } from '../src/memory/shard-states.js';
import { ConfigError, loadConfigFile, parseConfig } from '../src/train/config.js';

/** A case slower than this counts as a hang (the code under test is synchronous, so it cannot be cut off). */
const kSlowCaseMs = 5000;
const kLineBreak = /[\n\r\v\f\x1c-\x1e\u0085\u2028\u2029]/;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = readonly (string | number)[];
type Edit = { readonly op: 'set'; readonly path: Path; readonly value: Json } | { readonly op: 'delete'; readonly path: Path } | { readonly op: 'add'; readonly path: Path; readonly key: string; readonly value: Json };

/** Every node of a JSON tree, the root ([]) included. */
function paths(tree: Json, at: Path = []): Path[] {
  if (tree === null || typeof tree !== 'object') return [at];
  const children = Array.isArray(tree) ? tree.map((v, i) => paths(v, [...at, i])) : Object.entries(tree).map(([k, v]) => paths(v, [...at, k]));
  return [at, ...children.flat()];
}

/** Own data property, also for "__proto__" (an assignment would set the prototype instead). */
function put(target: Json[] | Record<string, Json>, key: string | number, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `base` with `edits` applied, on copies: neither `base` nor the generated values (constants are shared between cases) change. */
function applyEdits(base: Json, edits: readonly Edit[]): Json {
  let root = structuredClone(base);
  for (const edit of edits) {
    const value = edit.op === 'delete' ? null : structuredClone(edit.value);
    if (edit.path.length === 0) {
      if (edit.op === 'set') root = value;
      continue;
    }
    let parent: Json = root;
    for (const key of edit.path.slice(0, -1)) parent = parent !== null && typeof parent === 'object' ? ((parent as Record<string, Json>)[key] ?? null) : null;
    if (parent === null || typeof parent !== 'object') continue; // an earlier edit removed the way there
    const last = edit.path[edit.path.length - 1];
    const node = (parent as Record<string, Json>)[last];
    if (edit.op === 'set') put(parent, last, value);
    else if (edit.op === 'delete') Array.isArray(parent) ? parent.splice(Number(last), 1) : delete (parent as Record<string, Json>)[last];
    else if (node !== null && typeof node === 'object' && !Array.isArray(node)) put(node, edit.key, value);
  }
  return root;
}

function nested(depth: number): Json {
  let x: Json = 0;
  for (let i = 0; i < depth; i++) x = i % 2 ? [x] : { a: x };
  return x;
}

/** Values a damaged or hand-edited file holds where a number, string or list was expected. */
const nastyValue: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.constantFrom<Json>(-1, -0, 0, 0.5, 1.5, 1e300, -1e300, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2, 2 ** 60, 2 ** 64, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE),
  fc.constantFrom<Json>('NaN', 'Infinity', '-Infinity', '1e999', '0x10', '', ' 1', '1 ', '١', 'null', 'true', 'F32', 'F16', 'BF16', 'F64', 'I32', 'f32', 'pytorch', 'a\nb', '\u2028'),
  fc.constantFrom<Json>(null, true, false, [], {}, [0], [0, 0], [1, 2, 3], ['1', '2'], [-4, 0], [0, 4.5], [8, 4], [null, 1], [[1], [2]]),
  fc.constantFrom<Json>({ toString: 1 }, { valueOf: 'x', toString: null }, JSON.parse('{"__proto__": {"dtype": "F32"}}') as Json, { length: 2, 0: 1, 1: 2 }),
  fc.integer({ min: -10, max: 100_000 }),
  fc.integer({ min: 1000, max: 20_000 }).map((n): Json => new Array<Json>(n).fill(1)),
  // Edits can nest these into each other: deeper ones overflow structuredClone in applyEdits and fast-check's
  // printing of a counterexample. Text nested 100,000 deep is in configText.
  fc.integer({ min: 50, max: 400 }).map(nested),
);

const nastyKey = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'a.b', 'a b', 'a\nb', '\u2028', '[0]', '', '__metadata__', 'lr', 'name', 'step'));

/** 1–4 edits of `base`: set any node to a nasty value, delete it, or add a key to an object. */
function editsOf(base: Json): fc.Arbitrary<Edit[]> {
  const at = fc.constantFrom(...paths(base));
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ op: fc.constant('set' as const), path: at, value: nastyValue }),
    fc.record({ op: fc.constant('delete' as const), path: at }),
    fc.record({ op: fc.constant('add' as const), path: at, key: nastyKey, value: nastyValue }),
  );
  return fc.array(edit, { minLength: 1, maxLength: 4 });
}

function timed(what: string, run: () => void): void {
  const t0 = performance.now();
  run();
  const ms = performance.now() - t0;
  ok(ms < kSlowCaseMs, `${what} took ${ms.toFixed(0)} ms`);
}

/** Run `load`; it may return, or throw `errorClass` with a one-line message starting with `prefix`. */
function expectCleanFailure<T>(errorClass: new (...args: never[]) => Error, prefix: string, load: () => T): { value: T } | { error: Error } {
  try {
    return { value: load() };
  } catch (err) {
    if (!(err instanceof errorClass)) fail(`expected a ${errorClass.name} or success, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    ok(!kLineBreak.test(err.message), `message is not one line: ${JSON.stringify(err.message)}`);
    ok(err.message.startsWith(prefix), `message does not start with ${JSON.stringify(prefix)}: ${err.message}`);
    return { error: err };
  }
}

// ---- configs ----

const kPathStart = /^(?:([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;
const kPathNext = /^(?:\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;

/** Read a key path as config.ts writes it (`a.b[0]["c d"]`) from the start of `text`. */
function readKeyPath(text: string): { path: Path; rest: string } {
  if (text.startsWith('(top level)')) return { path: [], rest: text.slice('(top level)'.length) };
  const path: (string | number)[] = [];
  let rest = text;
  for (let m = kPathStart.exec(rest); m; m = kPathNext.exec(rest)) {
    path.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (JSON.parse(m[3]) as string)));
    rest = rest.slice(m[0].length);
  }
  ok(path.length > 0, `no key path at ${JSON.stringify(text.slice(0, 40))}`);
  return { path, rest };
}

function has(node: unknown, key: string | number): boolean {
  return node !== null && typeof node === 'object' && Object.hasOwn(node, key);
}

function resolve(root: unknown, path: Path): { found: boolean; parentFound: boolean } {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    if (!has(node, path[i])) return { found: false, parentFound: i === path.length - 1 && node !== null && typeof node === 'object' };
    node = (node as Record<string | number, unknown>)[path[i]];
  }
  return { found: true, parentFound: true };
}

/** A zod error names the key at fault: an unknown key that is there, or a key whose value (or absence) is wrong. */
function checkNamesKey(message: string, where: string, input: unknown): void {
  const rest = message.slice(where.length + 2);
  if (rest.startsWith('unknown key ')) {
    let list = rest.slice('unknown key '.length);
    for (;;) {
      const { path, rest: after } = readKeyPath(list);
      ok(resolve(input, path).found, `unknown key ${JSON.stringify(path)} is not in the input: ${message}`);
      if (!after.startsWith(', ')) return ok(after === '', `trailing text after the keys: ${message}`);
      list = after.slice(2);
    }
  }
  const { path, rest: after } = readKeyPath(rest);
  ok(after.startsWith(': '), `no ": " after the key path: ${message}`);
  const r = resolve(input, path);
  ok(r.found || r.parentFound, `key ${JSON.stringify(path)} is neither in the input nor missing from an object in it: ${message}`);
}

const kValidConfig = JSON.parse(readFileSync(fileURLToPath(new URL('../../config/char-lm.json', import.meta.url)), 'utf8')) as Json;

/** `content` through loadConfigFile, and `input` (the object it holds, when known) through parseConfig. */
function checkConfig(file: string, content: string | Uint8Array, input?: Json): void {
  writeFileSync(file, content);
  timed('loadConfigFile', () => {
    const where = `config ${file}`;
    const r = expectCleanFailure(ConfigError, `${where}: `, () => loadConfigFile(file));
    if ('error' in r && !r.error.message.startsWith(`${where}: not valid JSON (`)) checkNamesKey(r.error.message, where, input ?? JSON.parse(readFileSync(file, 'utf8')));
  });
  if (input === undefined) return;
  timed('parseConfig', () => {
    const r = expectCleanFailure(ConfigError, 'config: ', () => parseConfig(input));
    if ('error' in r) checkNamesKey(r.error.message, 'config', input);
  });
}

/** Text that is not a config: random JSON, random characters, raw bytes, valid text cut short or wrapped. */
const configText: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
  fc.nat({ max: JSON.stringify(kValidConfig).length - 1 }).map((n) => JSON.stringify(kValidConfig).slice(0, n)),
  fc.constantFrom('\uFEFF' + JSON.stringify(kValidConfig), `${JSON.stringify(kValidConfig)} x`, `${JSON.stringify(kValidConfig)}\n{}`, '{"a":1,"a":2}', `[${'['.repeat(100_000)}`, '{"steps": 1e999}', '{"steps": -0}'),
  fc.integer({ min: 10, max: 100_000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`),
);

// ---- checkpoints ----

const kTensors: readonly TensorSpec[] = [
  { name: 'dense/kernel', shape: [3, 4], size: 12 },
  { name: 'dense/bias', shape: [4], size: 4 },
  { name: 'LayerNorm/gamma', shape: [2, 1, 2], size: 4 },
  { name: 'scalar', shape: [], size: 1 },
];
const kStates: readonly StateName[] = ['params', 'm', 'v'];
const kMetadata: CheckpointMetadata = { step: 7, lr: 0.00125, convention: 'pytorch', config: { steps: 10, name: 'fuzz', nested: { a: [1, 2] } }, data: { seed: 3, position: 112 } };

function scratch(fill: (state: number, tensor: number, i: number) => number): Record<StateName, Record<string, Float32Array>> {
  return Object.fromEntries(kStates.map((s, si) => [s, Object.fromEntries(kTensors.map((t, ti) => [t.name, Float32Array.from({ length: t.size }, (_, i) => fill(si, ti, i))]))])) as Record<StateName, Record<string, Float32Array>>;
}

/** The whole load path of a resume, into scratch views. Returns the metadata and the values read. */
function loadCheckpoint(path: string): { metadata: CheckpointMetadata; values: Record<StateName, Record<string, Float32Array>> } {
  const header = readCheckpointHeader(path);
  const { format: _format, ...metadata } = checkpointMetadata(header);
  checkCheckpointTensors(header, kTensors, kStates);
  verifyCheckpoint(header);
  const values = scratch(() => Number.NaN);
  readCheckpointInto(header, kTensors, values);
  return { metadata, values };
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, n));
  return b;
}

/** A header's JSON text as bytes, padded to 8 as the writer does (or not), with its length in front. */
function withHeader(json: string, data: Buffer, pad: boolean): Buffer {
  const text = pad ? json + ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8) : json;
  return Buffer.concat([u64(BigInt(Buffer.byteLength(text))), Buffer.from(text), data]);
}

/** Damaged copies of `file`: cut, bit-flipped, lying length, edited or replaced header, duplicated keys, extra bytes. */
function damaged(file: Buffer): fc.Arbitrary<Buffer> {
  const n = Number(file.readBigUInt64LE(0));
  const headerJson = file.subarray(8, 8 + n).toString('utf8').trimEnd();
  const header = JSON.parse(headerJson) as Json;
  const data = file.subarray(8 + n);
  const keys = Object.keys(header as object);
  const flip = (bytes: Buffer, flips: readonly { pos: number; xor: number }[]): Buffer => {
    const out = Buffer.from(bytes);
    for (const f of flips) out[f.pos % out.length] ^= f.xor;
    return out;
  };
  const flips = fc.array(fc.record({ pos: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 6 });
  return fc.oneof(
    fc.nat({ max: file.length - 1 }).map((k) => file.subarray(0, k)),
    flips.map((f) => flip(file, f)),
    // a flip in the data section only: the checksum's job alone
    flips.map((f) => Buffer.concat([file.subarray(0, 8 + n), flip(data, f)])),
    fc
      .oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(2n ** 60n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n, BigInt(file.length), BigInt(file.length - 8), BigInt(n - 8), BigInt(n + 8), BigInt(n + 1), 0n))
      .map((len) => Buffer.concat([u64(len), file.subarray(8)])),
    fc.tuple(editsOf(header), fc.boolean()).map(([edits, pad]) => withHeader(JSON.stringify(applyEdits(header, edits)), data, pad)),
    fc.tuple(fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ maxLength: 40 }), fc.constantFrom('[]', '1', '"x"', 'null', 'true', '{}', '{"__metadata__":null}')), fc.boolean()).map(([json, pad]) => withHeader(json, data, pad)),
    fc.tuple(fc.constantFrom(...keys), nastyValue).map(([key, value]) => withHeader(`${headerJson.slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value)}}`, data, true)),
    fc.constantFrom(...keys).map((key) => withHeader(`${headerJson.slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify((header as Record<string, Json>)[key])}}`, data, true)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => Buffer.concat([file, extra])),
  );
}

/** Buffer.alloc / allocUnsafe sizes asked for while `run` runs. */
function largestAllocation(run: () => void): number {
  const { alloc, allocUnsafe } = Buffer;
  let largest = 0;
  Buffer.alloc = ((size: number, fill?: string | Uint8Array | number, encoding?: BufferEncoding) => {
    largest = Math.max(largest, size);
    return alloc(size, fill, encoding);
  }) as typeof alloc;
  Buffer.allocUnsafe = ((size: number) => {
    largest = Math.max(largest, size);
    return allocUnsafe(size);
  }) as typeof allocUnsafe;
  try {
    run();
  } finally {
    Buffer.alloc = alloc;
    Buffer.allocUnsafe = allocUnsafe;
  }
  return largest;
}

function checkCheckpointBytes(path: string, bytes: Buffer, expectedBytes: Buffer, expected: ReturnType<typeof scratch>): void {
  writeFileSync(path, bytes);
  let result: { value: ReturnType<typeof loadCheckpoint> } | { error: Error } | undefined;
  const largest = largestAllocation(() => timed('checkpoint load', () => (result = expectCleanFailure(CheckpointError, `checkpoint ${path}: `, () => loadCheckpoint(path)))));
  // Nothing is sized by what the file claims before the claim is checked against the file.
  ok(largest <= Math.max(8, bytes.length), `allocated ${largest} bytes for a file of ${bytes.length}`);
  ok(!bytes.equals(expectedBytes) || (result !== undefined && 'value' in result), `the undamaged file failed to load: ${result && 'error' in result ? result.error.message : ''}`);
  if (result && 'value' in result) {
    deepStrictEqual(result.value.metadata, kMetadata);
    for (const s of kStates) for (const t of kTensors) ok(Buffer.from(result.value.values[s][t.name].buffer).equals(Buffer.from(expected[s][t.name].buffer)), `${s} ${t.name} loaded with other values`);
  }
}

export interface FuzzTarget {
  readonly name: string;
  /** Run `numRuns` cases from `seed`; the failure report (fast-check's, with the shrunk case), or null. */
  run(params: { numRuns: number; seed: number }): { failure: string | null; numRuns: number };
}

function target<T>(name: string, property: fc.IProperty<[T]>, examples: T[] = []): FuzzTarget {
  return {
    name,
    run({ numRuns, seed }) {
      const details = fc.check(property, { numRuns, seed, examples: examples.map((e) => [e] as [T]) });
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      return { failure: details.failed ? `${fc.defaultReportMessage(details) ?? 'failed'}\nerror: ${error}` : null, numRuns: details.numRuns };
    },
  };
}

/** The targets' names, in order (known before the targets are built, for mocha's `it`). */
export const kFuzzTargetNames = ['config (edited objects)', 'config (text)', 'checkpoint bytes'] as const;

/** The fuzz targets, writing their files in `dir`. */
export async function fuzzTargets(dir: string): Promise<FuzzTarget[]> {
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'config.json');
  const checkpointFile = join(dir, 'fuzzed.safetensors');
  const values = scratch((s, t, i) => (s + 1) * 0.5 + t - i / 7);
  await writeCheckpoint(join(dir, 'original.safetensors'), { tensors: kTensors, states: values, metadata: kMetadata });
  const original = readFileSync(join(dir, 'original.safetensors'));
  // The case the brief names: a length field of 2^60 must be refused before any allocation of that size.
  const hugeLength = Buffer.concat([u64(2n ** 60n), original.subarray(8)]);
  return [
    target(kFuzzTargetNames[0], fc.property(editsOf(kValidConfig), (edits) => {
      const input = applyEdits(kValidConfig, edits);
      checkConfig(configFile, JSON.stringify(input), input);
    })),
    target(kFuzzTargetNames[1], fc.property(configText, (text) => checkConfig(configFile, text))),
    target(kFuzzTargetNames[2], fc.property(damaged(original), (bytes) => checkCheckpointBytes(checkpointFile, bytes, original, values)), [original, hugeLength]),
  ];
}
