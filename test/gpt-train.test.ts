// The gpt model module in the trainer: its data (split by whole address, windows cut in the one gather),
// bitwise determinism across thread counts, 10 steps + resume + 10 = 20, the run's tokens/s and samples,
// `shardtrain sample`, and bad input with one-line errors.

import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type TrainConfigInput } from '../src/index.js';
import { runTraining, sampleFromCheckpoint } from '../src/api/train.js';
import { gatherBatch } from '../src/train/data-order.js';
import { checkDataSet, type TokenWindows } from '../src/models/model-module.js';
import * as gpt from '../src/models/gpt.js';
import { loadAddresses } from '../src/models/sotu.js';
import { tinyGptConfig } from './fixtures/tiny-config.js';
import { expectReject } from './reference.js';


function bits(record: Record<string, Float32Array>): Buffer[] {
  return Object.keys(record)
    .sort()
    .map((k) => Buffer.from(record[k].buffer, record[k].byteOffset, record[k].byteLength));
}

async function stepTo(trainer: Trainer, step: number): Promise<void> {
  while (trainer.globalStep < step) await trainer.step();
}

describe('gpt: data', function () {
  this.timeout(60000);
  const options = { contextLength: 16, evalFraction: 0.05, evalWindows: 50 };

  it('holds out whole addresses (seeded), builds the vocabulary from the training text, and cuts windows x → y shifted by one', () => {
    const data = gpt.loadData({ options, seed: 9 });
    const meta = data.meta as gpt.GptMeta;
    const split = meta.split as gpt.SotuSplit;
    const vocab = [...meta.tokenizer.vocab!];
    expect(meta.tokenizer.name).to.equal('char');
    expect(meta.vocabSize).to.equal(vocab.length);
    const all = loadAddresses();
    expect(split.trainYears.length + split.evalYears.length).to.equal(all.length);
    expect(split.evalYears).to.have.length(Math.round(all.length * 0.05));
    const train = data.train as TokenWindows;
    const held = data.eval as TokenWindows;
    // Every training token is a vocabulary index, and every vocabulary character occurs in the training text.
    const seen = new Uint8Array(vocab.length);
    for (const t of train.tokens) seen[t] = 1;
    expect(seen.every((s) => s === 1)).to.equal(true);
    expect([...vocab].sort()).to.deep.equal(vocab);
    const counts = checkDataSet(data, 'gpt');
    expect(counts.train).to.equal(train.tokens.length - 16);
    // Held-out windows: non-overlapping, spread over the stream, at most evalWindows.
    expect(counts.eval).to.be.at.most(50).and.at.least(40);
    expect(held.stride).to.be.at.least(16);
    const b = gatherBatch(train, [0, 12345, counts.train - 1]);
    expect(b.xShape).to.deep.equal([3, 16]);
    for (let i = 0; i < 3; i++) expect(Array.from(b.y.subarray(i * 16, i * 16 + 15))).to.deep.equal(Array.from(b.x.subarray(i * 16 + 1, i * 16 + 16)));
    expect(b.y[2 * 16 + 15]).to.equal(train.tokens[train.tokens.length - 1]); // the last window ends at the last token
    // Another seed holds out other addresses; the same seed the same ones.
    const evalYears = (seed: number) => ((gpt.loadData({ options, seed }).meta as gpt.GptMeta).split as gpt.SotuSplit).evalYears;
    expect(evalYears(9)).to.deep.equal(split.evalYears);
    expect(evalYears(10)).to.not.deep.equal(split.evalYears);
    // loadMeta gives the same meta without the token streams.
    expect(gpt.loadMeta({ options, seed: 9 })).to.deep.equal(meta);
  });

  it('the initial values follow GPT-2: N(0, 0.02), residual projections N(0, 0.02/√(2·layers)), LayerNorm 1/0, biases 0', () => {
    expect(gpt.initRule('block_3/attn/proj/kernel', 8)).to.deep.equal({ std: 0.02 / 4 });
    expect(gpt.initRule('block_0/mlp/proj/kernel', 2)).to.deep.equal({ std: 0.01 });
    expect(gpt.initRule('block_0/mlp/fc/kernel', 2)).to.deep.equal({ std: 0.02 });
    expect(gpt.initRule('wte/embeddings', 2)).to.deep.equal({ std: 0.02 });
    expect(gpt.initRule('block_0/layer_norm_1/gamma', 2)).to.deep.equal({ constant: 1 });
    expect(gpt.initRule('layer_norm_f/beta', 2)).to.deep.equal({ constant: 0 });
    expect(gpt.initRule('block_0/attn/qkv/bias', 2)).to.deep.equal({ constant: 0 });
    const v = gpt.normalValues(200000, 0.02, 77);
    let s = 0;
    let s2 = 0;
    for (const x of v) {
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / v.length)).to.be.below(3 * (0.02 / Math.sqrt(v.length)));
    expect(Math.sqrt(s2 / v.length)).to.be.closeTo(0.02, 0.0002);
    expect(Buffer.from(gpt.normalValues(1000, 0.02, 77).buffer).equals(Buffer.from(v.buffer, 0, 4000))).to.equal(true);
  });
});

describe('gpt: training', function () {
  this.timeout(300000);

  it('1 and 2 threads give the same bits (2 replicas); 10 steps + resume + 10 steps = 20 steps', async () => {
    const config = tinyGptConfig({ replicas: 2 });
    const run = async (threads: number, steps: number, resume?: string) => {
      const trainer = await Trainer.create({ config, threads, resume });
      try {
        await stepTo(trainer, steps);
        return trainer;
      } finally {
        await trainer.close();
      }
    };
    const one = await run(1, 20);
    const two = await run(2, 20);
    expect(one.snapshot()['block_0/attn/qkv/kernel'].some((x) => x !== 0)).to.equal(true);
    expect(bits(two.snapshot())).to.deep.equal(bits(one.snapshot()));
    expect(bits(two.snapshot('m'))).to.deep.equal(bits(one.snapshot('m')));

    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-gpt-'));
    const first = await Trainer.create({ config, threads: 2 });
    try {
      await stepTo(first, 10);
      await first.saveCheckpoint(join(dir, 'at10.safetensors'));
    } finally {
      await first.close();
    }
    const resumed = await run(2, 20, join(dir, 'at10.safetensors'));
    for (const state of ['params', 'm', 'v'] as const) expect(bits(resumed.snapshot(state)), state).to.deep.equal(bits(one.snapshot(state)));
  });

  it('a run prints tokens/s, a held-out loss and a sample at each evaluation; `sample` continues a prompt from the run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-gpt-run-'));
    const configPath = join(dir, 'gpt.json');
    const config = tinyGptConfig({ steps: 6, logEvery: 2, evalEvery: 3, checkpointEvery: 3 });
    writeFileSync(configPath, JSON.stringify(config));
    const lines: string[] = [];
    const summary = await runTraining({ configPath, threads: 2, out: join(dir, 'run'), progress: false, log: (l) => lines.push(l) });
    expect(lines.some((l) => /step 6\/6 .* \d+ tokens\/s$/.test(l)), lines.join('\n')).to.equal(true);
    // The printed held-out losses are those of the parameters at steps 3 and 6, evaluated again here from the
    // run's checkpoints by a fresh trainer.
    const evalAt = async (step: number): Promise<number> => {
      const t = await Trainer.create({ config, threads: 2, resume: join(dir, 'run', `checkpoint-${String(step).padStart(8, '0')}.safetensors`) });
      try {
        return await t.evaluate();
      } finally {
        await t.close();
      }
    };
    const [at3, at6] = [await evalAt(3), await evalAt(6)];
    expect(at3).to.be.within(0, Math.log(200)).and.not.equal(at6);
    expect(lines).to.include(`step 3: held-out loss ${at3.toFixed(4)}`);
    expect(summary.evalLoss).to.be.closeTo(at6, 1e-6);
    expect(lines.some((l) => l.startsWith('done: 6 steps') && l.includes(`held-out loss ${at6.toFixed(4)}`)), lines.join('\n')).to.equal(true);
    expect(lines.filter((l) => l.startsWith('sample 1: "'))).to.have.length(2); // at step 3 and at the end
    expect(summary.samples[0]).to.have.length(200); // the default sample length, in characters
    const metrics = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(metrics.filter((m) => 'loss' in m).every((m) => m.tokensPerSec === m.samplesPerSec * 8 || Math.abs(m.tokensPerSec - m.samplesPerSec * 8) <= 8)).to.equal(true);

    const a = await sampleFromCheckpoint({ source: join(dir, 'run'), prompt: 'The Congress', tokens: 30, seed: 1, count: 2 });
    expect(a.step).to.equal(6);
    expect(a.samples).to.have.length(2);
    for (const s of a.samples) expect(s).to.match(/^The Congress/).and.have.length(42);
    const again = await sampleFromCheckpoint({ source: join(dir, 'run'), prompt: 'The Congress', tokens: 30, seed: 1, count: 2 });
    expect(again.samples).to.deep.equal(a.samples);
    const greedy = await Promise.all([1, 2].map((seed) => sampleFromCheckpoint({ source: join(dir, 'run'), prompt: 'We ', tokens: 10, seed, temperature: 0 })));
    expect(greedy[0].samples).to.deep.equal(greedy[1].samples); // temperature 0 takes the most likely character: no draw
  });
});

describe('gpt: bad input gives one-line errors', function () {
  this.timeout(60000);

  const options: Array<[Record<string, unknown>, RegExp]> = [
    [{ heads: 3 }, /^gpt: model\.options\.embedding \(128\) must be divisible by heads \(3\)$/],
    [{ layers: 0 }, /^gpt: model\.options\.layers must be a positive integer, got 0$/],
    [{ contextLength: 1.5 }, /^gpt: model\.options\.contextLength must be a positive integer, got 1\.5$/],
    [{ mlpRatio: 0.3 }, /^gpt: model\.options\.mlpRatio must be a positive number with mlpRatio × embedding an integer, got 0\.3$/],
    [{ tieEmbeddings: 'yes' }, /^gpt: model\.options\.tieEmbeddings must be true or false, got "yes"$/],
    [{ evalFraction: 1 }, /^gpt: model\.options\.evalFraction must be in \(0, 1\), got 1$/],
    [{ bias: 1 }, /^gpt: model\.options\.bias must be true or false, got 1$/],
    [{ data: '' }, /^gpt: model\.options\.data must be "sotu" or a prepared directory, got ""$/],
    [{ init: 3 }, /^gpt: model\.options\.init must be the path of a GPT-2 model\.safetensors, or null, got 3$/],
    [{ tokenizer: 'bpe' }, /^gpt: model\.options\.tokenizer must be one of "char", "gpt2" or null, got "bpe"$/],
    [{ tokenizer: 'gpt2' }, /^gpt: model\.options\.tokenizer is "gpt2", but data "sotu" is characters: prepare a directory with --tokenizer gpt2 and give it as model\.options\.data$/],
    [{ data: 'data/x', evalFraction: 0.1 }, /^gpt: model\.options\.evalFraction applies to data "sotu"; the prepared directory data\/x holds its own split \(shardtrain prepare --eval-fraction\)$/],
    [{ dropout: 0.1 }, /^gpt: unknown key model\.options\.dropout \(known: contextLength, embedding, heads, layers, mlpRatio, tieEmbeddings, bias, data, tokenizer, init, evalFraction, evalWindows\)$/],
  ];
  for (const [o, message] of options) {
    it(`model.options ${JSON.stringify(o)}`, () => {
      expect(() => gpt.resolveGptOptions(o)).to.throw(message);
    });
  }

  it('a training run refuses bad options before it starts', async () => {
    let err: Error | null = null;
    await Trainer.create({ config: tinyGptConfig({ model: { module: 'gpt', options: { heads: 5 } } }), threads: 1 }).catch((e: Error) => (err = e));
    expect(err!.message).to.equal('gpt: model.options.embedding (128) must be divisible by heads (5)');
  });

  it("the bias-free GPT on the tfjs engine is refused in one line (it is built on shardtrain's engine only)", async () => {
    await expectReject(
      Trainer.create({ config: tinyGptConfig({ engine: 'tfjs', model: { module: 'gpt', options: { contextLength: 8, embedding: 16, heads: 2, layers: 1, bias: false } } }), threads: 1 }),
      'gpt: model.options.bias false (nanoGPT\'s bias-free GPT) runs on the shardtrain engine; the tfjs engine\'s GPT has biases (leave "engine" unset)',
    );
  });

  it('token windows that do not fit their text, or are not integers, are refused by the contract check', () => {
    const check = (train: TokenWindows) => () => checkDataSet({ train, eval: train }, 'm.js');
    expect(check({ tokens: new Int32Array(8), window: 8 })).to.throw('model module m.js: loadData().train has 8 tokens, fewer than one window of 8 and its target');
    expect(check({ tokens: new Int32Array(9), window: 0 })).to.throw('model module m.js: loadData().train.window must be a positive integer, got 0');
    expect(check({ tokens: new Int32Array(9), window: 2, stride: 0 })).to.throw('model module m.js: loadData().train.stride must be a positive integer, got 0');
    expect(check({ tokens: [1, 2, 3] as unknown as Int32Array, window: 1 })).to.throw('model module m.js: loadData().train.tokens must be an Int32Array or a Uint16Array');
    expect(checkDataSet({ train: { tokens: new Int32Array(9), window: 8 }, eval: { tokens: new Int32Array(20), window: 4, stride: 5 } }, 'm.js')).to.deep.equal({ train: 1, eval: 4 });
  });

  it('sampling: a character outside the vocabulary, an empty prompt, a bad temperature or length', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrain-gpt-bad-'));
    const trainer = await Trainer.create({ config: tinyGptConfig({ steps: 3 }), threads: 1 });
    try {
      const path = join(dir, 'c.safetensors');
      await trainer.step(); // a checkpoint holds the lr of the last step taken
      await trainer.saveCheckpoint(path);
      await expectReject(trainer.sample(1, 0, { prompt: 'naïve Ω' }), /^gpt: the prompt: the character "[ïΩ]" \(U\+[0-9A-F]{4}\) at \d is not in the vocabulary of \d+ characters$/);
      await expectReject(trainer.sample(1, 0, { prompt: '' }), 'gpt: the prompt is empty (give at least one character, or no prompt to start a new document)');
      await expectReject(trainer.sample(1, 0, { topK: 0 }), 'gpt: sample topK must be a positive integer, got 0');
      await expectReject(trainer.sample(1, 0, { temperature: -1 }), 'gpt: sample temperature must be a finite number ≥ 0, got -1');
      await expectReject(trainer.sample(1, 0, { tokens: 0 }), 'gpt: sample tokens must be a positive integer, got 0');
      let err: Error | null = null;
      await sampleFromCheckpoint({ source: path, prompt: 'Ω' }).catch((e: Error) => (err = e));
      expect(err!.message).to.match(/^gpt: the prompt: the character "Ω" \(U\+03A9\) at 0 is not in the vocabulary of \d+ characters$/);
    } finally {
      await trainer.close();
    }
  });
});
