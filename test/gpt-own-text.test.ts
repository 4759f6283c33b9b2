// The gpt on a prepared directory (model.options.data): its windows are the directory's ids, held once in
// shared memory (the Uint16Arrays the reader made, never copied again); both engines gather from them and
// score the same held-out loss; 1 and 2 threads give the same bits; the vocabulary and the sampler's
// tokenizer are the directory's (char, or GPT-2's 50,257 tokens); --top-k keeps the k most likely tokens as
// nanoGPT's sample.py does; and every bad input is one line, exit 1, with nothing written.

import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Trainer, type TrainConfigInput } from '../src/index.js';
import { prepare } from '../src/corpus/prepare.js';
import * as gpt from '../src/models/gpt.js';
import { drawToken, topKThreshold } from '../src/models/gpt-sample.js';
import type { TokenWindows } from '../src/models/model-module.js';
import { openPrepared } from '../src/models/prepared.js';
import { evalStride } from '../src/models/sotu.js';
import { gpt2Tokenizer, kGpt2EndOfText } from '../src/models/tokenizer.js';
import { shared, sharedExamples } from '../src/train/shared-data.js';
import { root } from './fixtures/fault-run.js';
import { needTorch, python } from './fixtures/torch.js';
import { freshSeed, rng } from './reference.js';

const seed = freshSeed();
const fixture = join(root, 'test/fixtures/sotu-text');
const cli = join(root, 'dist/src/cli/main.js');

function bits(record: Record<string, Float32Array>): string[] {
  return Object.keys(record).sort().map((k) => Buffer.from(record[k].buffer, record[k].byteOffset, record[k].byteLength).toString('hex'));
}

/** A tiny GPT on `data` (context 16, width 16, one block). */
function tinyConfig(data: string, over: Partial<TrainConfigInput> = {}, options: Record<string, unknown> = {}): TrainConfigInput {
  return {
    model: { module: 'gpt', options: { data, contextLength: 16, embedding: 16, heads: 2, layers: 1, mlpRatio: 2, evalWindows: 8, ...options } },
    seed: 3,
    steps: 6,
    batchSize: 4,
    evalBatch: 8,
    samples: 0,
    optimizer: { lr: 0.01, schedule: { name: 'linear', warmupSteps: 2 }, weightDecay: 0.1, excludeFromWeightDecay: 'bert', clipGlobalNorm: 1 },
    ...over,
  };
}

describe(`gpt on a prepared directory (seed ${seed})`, function () {
  this.timeout(300000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-own-text-'));
  const charDir = join(dir, 'char');
  const gpt2Dir = join(dir, 'gpt2');
  const next = rng(seed);

  before(async () => {
    await prepare({ inputs: [fixture], out: charDir, threads: 1 });
    // nanoGPT's layout for GPT-2 ids (no meta): random ids, so that every part of the vocabulary occurs.
    mkdirSync(gpt2Dir);
    const ids = (n: number) => Buffer.from(Uint16Array.from({ length: n }, () => Math.floor(next() * 50257)).buffer);
    writeFileSync(join(gpt2Dir, 'train.bin'), ids(3000));
    writeFileSync(join(gpt2Dir, 'val.bin'), ids(500));
  });

  describe('data', () => {
    it("the windows are the directory's ids, in the reader's shared Uint16Arrays; the meta names its tokenizer", () => {
      const data = gpt.loadData({ options: { data: charDir, contextLength: 16, evalWindows: 8 }, seed: 1 });
      const direct = openPrepared(charDir);
      const train = data.train as TokenWindows;
      const held = data.eval as TokenWindows;
      expect(train.tokens).to.be.instanceOf(Uint16Array);
      expect(train.tokens.buffer).to.be.instanceOf(SharedArrayBuffer);
      expect(Buffer.from(train.tokens.buffer).equals(Buffer.from(direct.train.buffer))).to.equal(true);
      expect(Buffer.from(held.tokens.buffer).equals(Buffer.from(direct.val.buffer))).to.equal(true);
      expect(train).to.include({ window: 16 });
      expect(train.stride).to.equal(undefined); // every offset of train.bin
      expect(held.stride).to.equal(evalStride(direct.val.length, 16, 8));
      const meta = data.meta as gpt.GptMeta;
      expect(meta).to.deep.equal({ tokenizer: { name: 'char', vocab: direct.vocab!.join('') }, vocabSize: 75, contextLength: 16, data: charDir, split: { kind: 'prepared', writer: 'shardtrain' } });
      expect(gpt.loadMeta({ options: { data: charDir, contextLength: 16 }, seed: 1 })).to.deep.equal(meta);
      const ids = gpt.loadMeta({ options: { data: gpt2Dir }, seed: 1 });
      expect(ids).to.deep.include({ tokenizer: { name: 'gpt2' }, vocabSize: 50257, split: { kind: 'prepared', writer: 'nanogpt' } });
    });

    it("nanoGPT's shakespeare_char layout (meta.pkl): the vocabulary is the pickle's", function () {
      needTorch(this, "the nanoGPT-format check (numpy comes with Debian's python3-torch)");
      const out = join(dir, 'nanogpt-char');
      const text = join(fixture, '1790_george_washington_n.txt');
      const r = spawnSync(python, [join(root, 'test/fixtures/nanogpt_prepare.py'), 'char', out, text], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
      const meta = gpt.loadMeta({ options: { data: out, tokenizer: 'char' }, seed: 1 });
      expect(meta.tokenizer).to.deep.equal({ name: 'char', vocab: [...new Set(readFileSync(text, 'utf8'))].sort().join('') });
      expect(meta.split).to.deep.equal({ kind: 'prepared', writer: 'nanogpt' });
    });

    it('an array over a SharedArrayBuffer is handed on as it is; any other is copied into one, once', () => {
      const own = new Uint16Array(new SharedArrayBuffer(8));
      expect(shared(own)).to.equal(own);
      const plain = Int32Array.of(1, 2, 3);
      const copy = shared(plain);
      expect(copy).to.not.equal(plain);
      expect(copy.buffer).to.be.instanceOf(SharedArrayBuffer);
      expect(Array.from(copy)).to.deep.equal([1, 2, 3]);
      const windows = sharedExamples({ tokens: own, window: 2 }) as TokenWindows;
      expect(windows.tokens).to.equal(own);
    });
  });

  describe('training', () => {
    it('1 and 2 threads give the same bits (2 replicas), the threads viewing the ids the reader made', async () => {
      const run = async (threads: number) => {
        const trainer = await Trainer.create({ config: tinyConfig(charDir, { replicas: 2 }), threads });
        try {
          const tokens = (trainer.engine.extension.data as { train: TokenWindows }).train.tokens;
          expect(tokens).to.be.instanceOf(Uint16Array);
          expect(tokens.buffer).to.be.instanceOf(SharedArrayBuffer);
          expect(tokens.length).to.equal(openPrepared(charDir).train.length);
          while (trainer.globalStep < 6) await trainer.step();
          return trainer.snapshot();
        } finally {
          await trainer.close();
        }
      };
      const one = await run(1);
      expect(bits(await run(2))).to.deep.equal(bits(one));
    });

    it('the tfjs engine gathers the same windows: the same held-out loss and first-step loss as the shardtrain engine (within 1e-5)', async () => {
      const losses = async (engine: 'shardtrain' | 'tfjs') => {
        const trainer = await Trainer.create({ config: tinyConfig(charDir, { engine }), threads: 2 });
        try {
          const held = await trainer.evaluate();
          return { held, first: (await trainer.step()).loss };
        } finally {
          await trainer.close();
        }
      };
      const [ours, tfjs] = [await losses('shardtrain'), await losses('tfjs')];
      // The same float32 model on the same params and windows: only the summation order differs (the bound
      // the whole-model gradient tests hold both engines to).
      expect(Math.abs(ours.held - tfjs.held)).to.be.below(1e-5 * ours.held);
      expect(Math.abs(ours.first - tfjs.first)).to.be.below(1e-5 * ours.first);
      expect(ours.held).to.be.closeTo(Math.log(75), 0.5); // GPT-2's init: about uniform over 75 characters
    });
  });

  describe('sampling', () => {
    it("GPT-2's ids: the prompt is encoded and the result decoded with GPT-2's tokenizer; without a prompt a sample starts after <|endoftext|>", async () => {
      const trainer = await Trainer.create({ config: tinyConfig(gpt2Dir), threads: 1 });
      try {
        expect(trainer.tensors[0].shape).to.deep.equal([50257, 16]);
        const [greedy] = await trainer.sample(1, 1, { prompt: 'Hello world', tokens: 6, temperature: 0 });
        expect(greedy.startsWith('Hello world')).to.equal(true);
        // top-k 1 takes the most likely token whatever the temperature.
        expect(await trainer.sample(1, 2, { prompt: 'Hello world', tokens: 6, temperature: 1.5, topK: 1 })).to.deep.equal([greedy]);
        const [free] = await trainer.sample(1, 1, { tokens: 6 });
        expect(free.length).to.be.above(0);
        expect(free.includes('<|endoftext|>')).to.equal(false);
        expect(gpt2Tokenizer().decode([kGpt2EndOfText])).to.equal('<|endoftext|>');
      } finally {
        await trainer.close();
      }
    });

    it('characters: a prompt outside the vocabulary names the character; no prompt and no newline in the vocabulary is one line too', async () => {
      const flat = join(dir, 'flat');
      const text = join(dir, 'flat.txt');
      writeFileSync(text, 'abcd efgh '.repeat(200));
      await prepare({ inputs: [text], out: flat, threads: 1 });
      const trainer = await Trainer.create({ config: tinyConfig(flat), threads: 1 });
      try {
        const refusal = (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => e.message);
        expect(await refusal(trainer.sample(1, 0, { prompt: 'abcz' }))).to.equal('gpt: the prompt: the character "z" (U+007A) at 3 is not in the vocabulary of 9 characters');
        expect(await refusal(trainer.sample(1, 0, {}))).to.equal('gpt: no prompt was given, and the vocabulary of 9 characters has no newline to start a document with: give a prompt');
        expect((await trainer.sample(1, 0, { prompt: 'ab', tokens: 4 }))[0]).to.have.length(6);
      } finally {
        await trainer.close();
      }
    });

    it('top-k: the threshold is the k-th largest logit (ties kept), and draws come from those only, as softmax over them', () => {
      const sorted = new Float64Array(6);
      const logits = Float32Array.of(0.5, 2, 2, -1, 1, 3);
      expect(topKThreshold(logits, 0, 6, 1, sorted)).to.equal(3);
      expect(topKThreshold(logits, 0, 6, 2, sorted)).to.equal(2); // the two 2s tie for second: both kept
      expect(topKThreshold(logits, 0, 6, 4, sorted)).to.equal(1);
      expect(topKThreshold(logits, 0, 6, 6, sorted)).to.equal(-Infinity);
      // k = 3 keeps 3, 2, 2: p ∝ e³, e², e² (temperature 1).
      const threshold = topKThreshold(logits, 0, 6, 3, sorted);
      const counts = new Float64Array(6);
      const n = 30000;
      const draw = rng(seed ^ 0x70b);
      for (let i = 0; i < n; i++) counts[drawToken(logits, 0, 6, 1, draw(), threshold)]++;
      expect([counts[0], counts[3], counts[4]]).to.deep.equal([0, 0, 0]);
      const z = Math.exp(3) + 2 * Math.exp(2);
      for (const [i, p] of [[5, Math.exp(3) / z], [1, Math.exp(2) / z], [2, Math.exp(2) / z]] as const) {
        const sigma = Math.sqrt(n * p * (1 - p));
        expect(Math.abs(counts[i] - n * p), `token ${i}: ${counts[i]} of ${n}, expected ${(n * p).toFixed(0)}`).to.be.below(5 * sigma);
      }
    });

    it("GPT-2's decode of ids that end inside a character gives U+FFFD and leaves nothing for the next call", () => {
      const t = gpt2Tokenizer();
      // Token 100 is one byte (0xc4) that begins a two-byte character and ends nothing.
      expect(t.decode([464, 100])).to.equal('The\ufffd');
      expect(t.decode([464])).to.equal('The');
    });
  });

  describe('config/gpt2-finetune.json', () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [cli, 'train', '--config', join(root, 'config/gpt2-finetune.json'), ...args], { cwd: root }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    let data = '';
    before(() => {
      data = join(dir, 'gpt2-long');
      mkdirSync(data);
      const ids = (n: number) => Buffer.from(Uint16Array.from({ length: n }, () => Math.floor(next() * 50257)).buffer);
      writeFileSync(join(data, 'train.bin'), ids(4000));
      writeFileSync(join(data, 'val.bin'), ids(2100));
    });

    it("is GPT-2 small on GPT-2's tokens: --dry-run plans its 124,439,808 parameters", async () => {
      const r = await run(['--set', `model.options.data=${data}`, '--dry-run']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^memory plan: shared states [\d.]+ GiB \(124\.44 M params × 20 B: params, m, v, gradient slots\) \+ 2 arenas × /);
    });

    it('starts from its init file: without one the run is one line, exit 1, nothing written', async () => {
      const out = join(dir, 'finetune-run');
      const missing = join(dir, 'no-gpt2', 'model.safetensors');
      const r = await run(['--set', `model.options.data=${data}`, '--set', `model.options.init=${missing}`, '--out', out, '--no-progress']);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(`shardtrain train: GPT-2 checkpoint ${missing}: no such file\n`);
      expect(existsSync(out)).to.equal(false);
    });
  });

  describe('bad input: one line, exit 1, nothing written', () => {
    const cases: Array<[string, () => { data: string; options?: Record<string, unknown> }, (d: string) => string]> = [
      ['a .bin of odd length', () => copyWith('odd', (d) => writeFileSync(join(d, 'val.bin'), Buffer.concat([readFileSync(join(d, 'val.bin')), Buffer.of(7)]))), (d) => `prepared data ${d}/val.bin: ${readFileSync(join(d, 'val.bin')).length} bytes, an odd number: not uint16 token ids`],
      ['a token id ≥ the vocabulary', () => copyWith('big-id', (d) => {
        const b = readFileSync(join(d, 'train.bin'));
        b.writeUInt16LE(200, 2 * 17);
        writeFileSync(join(d, 'train.bin'), b);
      }), (d) => `prepared data ${d}/train.bin: token 200 at position 17 is not below the vocabulary size 75 (char)`],
      ['a directory prepared with another tokenizer than the config names', () => ({ data: charDir, options: { tokenizer: 'gpt2' } }), (d) => `prepared data ${d}: was prepared with the char tokenizer (meta.json), not gpt2`],
      ["nanoGPT's GPT-2 ids where the config names characters", () => ({ data: gpt2Dir, options: { tokenizer: 'char' } }), (d) => `prepared data ${d}: was prepared with the gpt2 tokenizer (no meta.json or meta.pkl: nanoGPT's GPT-2 tokens), not char`],
      ['a val.bin shorter than one window', () => ({ data: charDir, options: { contextLength: 40000 } }), (d) => `prepared data ${d}/val.bin: holds ${openPrepared(charDir).val.length} tokens, fewer than one window of model.options.contextLength 40000 and its target: prepare with a larger --eval-fraction, or use a shorter contextLength`],
      ['no such directory', () => ({ data: join(dir, 'nowhere') }), (d) => `prepared data ${d}: no such directory`],
    ];
    /** A copy of the char directory, changed by `change`. */
    function copyWith(name: string, change: (d: string) => void): { data: string } {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      for (const f of ['train.bin', 'val.bin', 'meta.json']) copyFileSync(join(charDir, f), join(d, f));
      change(d);
      return { data: d };
    }
    for (const [what, make, message] of cases) {
      it(`${what}: shardtrain train`, async () => {
        const { data, options } = make();
        const config = join(dir, 'bad.json');
        writeFileSync(config, JSON.stringify(tinyConfig(data, {}, options)));
        const out = join(dir, 'bad-run');
        const err = await promisify(execFile)(process.execPath, [cli, 'train', '--config', config, '--out', out, '--no-progress'], { cwd: root }).then(
          () => null,
          (e: { code: number; stderr: string }) => e,
        );
        expect(err?.code).to.equal(1);
        expect(err?.stderr).to.equal(`shardtrain train: ${message(data)}\n`);
        expect(existsSync(out)).to.equal(false);
      });
    }

    it('a prompt character outside the vocabulary: shardtrain sample', async () => {
      const config = join(dir, 'ok.json');
      writeFileSync(config, JSON.stringify(tinyConfig(charDir, { steps: 1 })));
      const run = join(dir, 'ok-run');
      await promisify(execFile)(process.execPath, [cli, 'train', '--config', config, '--out', run, '--no-progress'], { cwd: root });
      const err = await promisify(execFile)(process.execPath, [cli, 'sample', run, '--prompt', 'Fellow-Citizens Ω'], { cwd: root }).then(
        () => null,
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(err?.code).to.equal(1);
      expect(err?.stdout).to.equal('');
      expect(err?.stderr).to.equal('shardtrain sample: gpt: the prompt: the character "Ω" (U+03A9) at 16 is not in the vocabulary of 75 characters\n');
    });
  });

  after(() => rmSync(dir, { recursive: true, force: true }));
});
