// Checkpoints: a valid safetensors file (header parsed here, independently of src/), an exact resume, and
// bad checkpoints refused with a one-line error before anything is overwritten.

import { expect } from 'chai';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type TrainConfigInput } from '../src/index.js';
import { runTraining } from '../src/api/train.js';
import { inspectCheckpoint } from '../src/cli/inspect.js';
import { tinyConfig } from './fixtures/tiny-config.js';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A minimal safetensors reader, written from the format's description, not from src/. */
function parseSafetensors(path: string): { metadata: Record<string, string>; tensors: Record<string, Entry>; headerBytes: number; data: Buffer } {
  const file = readFileSync(path);
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const { __metadata__, ...tensors } = header;
  return { metadata: __metadata__ as Record<string, string>, tensors: tensors as Record<string, Entry>, headerBytes: n, data: file.subarray(8 + n) };
}

function floats(data: Buffer, e: Entry): Float32Array {
  const bytes = data.subarray(e.data_offsets[0], e.data_offsets[1]);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Replace the header's JSON text (re-padded, length prefix fixed), keeping the data section. */
function rewriteHeader(path: string, edit: (json: string) => string): void {
  const file = readFileSync(path);
  const n = Number(file.readBigUInt64LE(0));
  let json = edit(file.subarray(8, 8 + n).toString('utf8').trimEnd());
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(path, Buffer.concat([head, Buffer.from(json), file.subarray(8 + n)]));
}

async function runSteps(trainer: Trainer, until: number): Promise<void> {
  while (trainer.globalStep < until) await trainer.step();
}

describe('checkpoints', function () {
  this.timeout(60000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-ckpt-'));
  const config: TrainConfigInput = tinyConfig({ steps: 20, replicas: 2, optimizer: { lr: 0.01, schedule: { name: 'cosine', warmupSteps: 4 }, excludeFromWeightDecay: 'bert', clipGlobalNorm: 1 } });
  const at10 = join(dir, 'at10.safetensors');

  it('resume: 10 steps, checkpoint, 10 more == 20 uninterrupted, bitwise (params, m, v, step, lr)', async () => {
    const straight = await Trainer.create({ config, threads: 1 });
    await runSteps(straight, 20);
    const first = await Trainer.create({ config, threads: 1 });
    await runSteps(first, 10);
    await first.saveCheckpoint(at10);
    await first.close();
    const resumed = await Trainer.create({ config, threads: 1, resume: at10 });
    expect(resumed.globalStep).to.equal(10);
    await runSteps(resumed, 20);
    try {
      expect(resumed.globalStep).to.equal(straight.globalStep);
      expect(resumed.optimizer.lr).to.equal(straight.optimizer.lr);
      for (const state of ['params', 'm', 'v'] as const) {
        const a = straight.snapshot(state);
        const b = resumed.snapshot(state);
        for (const name of Object.keys(a)) expect(Buffer.from(b[name].buffer).equals(Buffer.from(a[name].buffer)), `${state} ${name}`).to.equal(true);
      }
    } finally {
      await straight.close();
      await resumed.close();
    }
  });

  it('a checkpoint of step 0 (before any step: no lr yet) loads, and the run from it is the run from scratch', async () => {
    const at0 = join(dir, 'at0.safetensors');
    const fresh = await Trainer.create({ config, threads: 1 });
    await fresh.saveCheckpoint(at0);
    const resumed = await Trainer.create({ config, threads: 1, resume: at0 });
    try {
      expect(resumed.globalStep).to.equal(0);
      await runSteps(fresh, 3);
      await runSteps(resumed, 3);
      const a = fresh.snapshot('params');
      const b = resumed.snapshot('params');
      for (const name of Object.keys(a)) expect(Buffer.from(b[name].buffer).equals(Buffer.from(a[name].buffer)), name).to.equal(true);
    } finally {
      await fresh.close();
      await resumed.close();
    }
  });

  it('char-lm builds the same initial values for every seed, 0 included (tfjs reads an initializer seed of 0 as "none")', async () => {
    for (const seed of [0, 1]) {
      const a = await Trainer.create({ config: { ...config, seed }, threads: 1 });
      const b = await Trainer.create({ config: { ...config, seed }, threads: 1 });
      try {
        const [x, y] = [a.snapshot('params'), b.snapshot('params')];
        for (const name of Object.keys(x)) expect(Buffer.from(y[name].buffer).equals(Buffer.from(x[name].buffer)), `seed ${seed}, ${name}`).to.equal(true);
      } finally {
        await a.close();
        await b.close();
      }
    }
  });

  it('is a valid safetensors file: 8-byte header length, JSON, F32, right shapes, contiguous offsets', async () => {
    const trainer = await Trainer.create({ config, threads: 1 });
    try {
      const { metadata, tensors, headerBytes, data } = parseSafetensors(at10);
      expect(headerBytes % 8).to.equal(0);
      expect(Object.values(metadata).every((v) => typeof v === 'string')).to.equal(true);
      expect(metadata.step).to.equal('10');
      expect(metadata.convention).to.equal('pytorch');
      expect(JSON.parse(metadata.config)).to.include({ steps: 20, batchSize: 32 });
      expect(JSON.parse(metadata.data)).to.include({ position: 320, seed: 7 });
      const expected = trainer.tensors.flatMap((t) => [t.name, `optimizer.m.${t.name}`, `optimizer.v.${t.name}`].map((n) => [n, t.shape] as const));
      expect(Object.keys(tensors).sort()).to.deep.equal(expected.map(([n]) => n).sort());
      for (const [name, shape] of expected) {
        expect(tensors[name].dtype, name).to.equal('F32');
        expect(tensors[name].shape, name).to.deep.equal(shape);
      }
      const sorted = Object.values(tensors).sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
      let end = 0;
      for (const e of sorted) {
        expect(e.data_offsets[0]).to.equal(end);
        expect(e.data_offsets[1] - e.data_offsets[0]).to.equal(4 * e.shape.reduce((a, d) => a * d, 1));
        end = e.data_offsets[1];
      }
      expect(end).to.equal(data.length);
      // The stored params are the ones a resumed trainer starts from.
      const resumed = await Trainer.create({ config, threads: 1, resume: at10 });
      const params = resumed.snapshot('params');
      await resumed.close();
      for (const t of trainer.tensors) expect(Array.from(floats(data, tensors[t.name]))).to.deep.equal(Array.from(params[t.name]));
    } finally {
      await trainer.close();
    }
  });

  it('inspect says whether the checksums hold, and still lists a damaged file', () => {
    expect(inspectCheckpoint(at10).split('\n')[2]).to.equal('checksums ok');
    const damaged = join(dir, 'inspect-damaged.safetensors');
    const bytes = readFileSync(at10);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(damaged, bytes);
    const report = JSON.parse(inspectCheckpoint(damaged, { json: true })) as { checksums: string; tensors: unknown[] };
    expect(report.checksums).to.match(/^data checksum mismatch \(crc32 of the data section is [0-9a-f]{8}, __metadata__\.data_crc32 says [0-9a-f]{8}\)/);
    expect(report.tensors).to.have.length(3 * 7);
  });

  describe('bad checkpoints: a one-line error naming the file or tensor, nothing overwritten', () => {
    const bad = (name: string, make: (path: string) => void): string => {
      const path = join(dir, name);
      copyFileSync(at10, path);
      make(path);
      return path;
    };
    const cases: Array<[string, () => string, TrainConfigInput, RegExp]> = [
      ['missing file', () => join(dir, 'nope.safetensors'), config, /nope\.safetensors: no such file/],
      ['truncated', () => bad('truncated.safetensors', (p) => truncateSync(p, statSync(p).size - 100)), config, /truncated\.safetensors: truncated: header describes \d+ bytes, file has \d+/],
      ['corrupt header', () => bad('corrupt.safetensors', (p) => { const b = readFileSync(p); b.write('@@@@', 8); writeFileSync(p, b); }), config, /corrupt\.safetensors: header is not valid JSON/],
      ['not safetensors at all', () => bad('text.safetensors', (p) => writeFileSync(p, 'hello world, not a checkpoint')), config, /text\.safetensors: header length \d+ does not fit/],
      ['a flipped bit in the data', () => bad('flipped.safetensors', (p) => { const b = readFileSync(p); b[b.length - 5] ^= 0x10; writeFileSync(p, b); }), config, /flipped\.safetensors: data checksum mismatch \(crc32 of the data section is [0-9a-f]{8}, __metadata__\.data_crc32 says [0-9a-f]{8}\)/],
      ['a changed digit in the step', () => bad('step.safetensors', (p) => rewriteHeader(p, (h) => h.replace('"step":"10"', '"step":"11"'))), config, /step\.safetensors: header checksum mismatch/],
      ['an older file without checksums', () => bad('old.safetensors', (p) => rewriteHeader(p, (h) => h.replace(/"header_crc32":"[0-9a-f]{8}","data_crc32":"[0-9a-f]{8}",/, '').replace('shardtrain-2', 'shardtrain-1'))), config, /old\.safetensors: no __metadata__\.header_crc32: a file without checksums \(format "shardtrain-1"; shardtrain writes shardtrain-2\) is not loaded unverified/],
      ['another model (shapes differ)', () => at10, tinyConfig({ model: { module: 'char-lm', options: { contextLength: 3, embedding: 8, hidden: [48] } } }), /tensor "hidden_0\/kernel" has shape \[24,32\], the model has \[24,48\]/],
      ['another model (names differ)', () => at10, tinyConfig({ model: { module: 'char-lm', options: { contextLength: 3, embedding: 8, hidden: [32, 32] } } }), /tensor "hidden_1\/kernel" is missing/],
    ];
    for (const [what, file, cfg, message] of cases) {
      it(what, async () => {
        const out = join(dir, `out-${what.replace(/\W+/g, '-')}`);
        // A run directory that must survive the failed resume untouched.
        const runDir = join(dir, `run-${what.replace(/\W+/g, '-')}`);
        const { mkdirSync } = await import('node:fs');
        mkdirSync(runDir);
        const path = file();
        const cfgPath = join(runDir, 'cfg.json');
        writeFileSync(cfgPath, JSON.stringify(cfg));
        writeFileSync(join(runDir, 'metrics.jsonl'), '{"step":1,"loss":3}\n');
        const before = readdirSync(runDir).map((f) => [f, readFileSync(join(runDir, f), 'utf8')]);
        let error: Error | null = null;
        try {
          await runTraining({ configPath: cfgPath, resume: path, out: runDir, threads: 1, progress: false, log: () => {} });
        } catch (err) {
          error = err as Error;
        }
        expect(error, 'expected an error').to.be.instanceOf(Error);
        expect(error!.message).to.match(message);
        expect(error!.message).to.not.include('\n');
        expect(readdirSync(runDir).map((f) => [f, readFileSync(join(runDir, f), 'utf8')])).to.deep.equal(before);
        void out;
      });
    }
  });
});
