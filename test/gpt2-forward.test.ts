// Starting the GPT from GPT-2's weights (model.options.init): a small random GPT-2 (2 layers, width 48, 4
// heads, context 16, GPT-2's 50,257 tokens) that torch writes in Hugging Face's layout, read through the
// Trainer and through Gpt2Checkpoint into shardtrain's engine, against a forward pass written from GPT-2's
// definition in the fixture's Python (test/fixtures/gpt2_forward.py), in float64 from the same float32
// weights. The logits agree to float32 rounding, and the greedy continuation of a prompt is the same, token
// for token. A resume reads its checkpoint instead of the init file; an init file of another shape or
// missing a tensor is refused in one line, and the run writes nothing.
//
// Tolerance, stated before the run: the logits are the end of 2L + 1 products along the residual stream
// (per block the attention's and the MLP's output projections, then the head), each fed by products of
// depth ≤ 4C, softmax rows of ≤ T terms and elementwise maps of a few ulps; a product of depth k has
// ‖fl(AB) − AB‖ ≤ γ_k‖A‖‖B‖ (γ_k = k·u/(1 − k·u), u = 2⁻²⁴), and each block's LayerNorm rescales its
// input to unit variance, so at these weight scales the errors neither grow nor shrink from block to
// block: per row, max|Δlogit| ≤ β·max|logit| with β = (2L + 1)·γ_{4C} = 5.7e-5. torch's own float32 forward
// is held to the same β (the bound is what float32 arithmetic gives, not shardtrain's own figure). Wrong
// GPT-2 details move the logits by more: ε = 1e-6 instead of 1e-5 by ~5e-4, the erf GELU by ~2e-4. The
// greedy check needs every step's margin between the largest two logits above 2β·max|logit| (then no
// rounding within β can swap them): the fixture draws its weights again until it is (it says how often).

import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Trainer, type TrainConfigInput } from '../src/index.js';
import { Gpt2Checkpoint } from '../src/checkpoint/gpt2-import.js';
import { sampleTokens } from '../src/models/gpt-sample.js';
import { gpt2Tokenizer, kGpt2VocabSize, type Tokenizer } from '../src/models/tokenizer.js';
import { soloEngine, type SoloEngine } from './fixtures/engine-harness.js';
import { root } from './fixtures/fault-run.js';
import { needTorch, python } from './fixtures/torch.js';
import { freshSeed, rng } from './reference.js';

const seed = freshSeed();
const u = 2 ** -24;
const gamma = (k: number): number => (k * u) / (1 - k * u);

const V = kGpt2VocabSize;
const [T, C, L, H, B] = [16, 48, 2, 4, 2];
const beta = (2 * L + 1) * gamma(4 * C);
const steps = 12;
const promptText = 'The State of the Union';

/** Per row of V logits: max|got − want| / max|want|, the worst row. */
function worstRow(got: ArrayLike<number>, want: ArrayLike<number>): { error: number; row: number } {
  let worst = { error: 0, row: -1 };
  for (let r = 0; r < want.length / V; r++) {
    let d = 0;
    let scale = 0;
    for (let v = r * V; v < (r + 1) * V; v++) {
      const e = Math.abs(got[v] - want[v]);
      if (!(e <= d)) d = e; // NaN counts as worst
      scale = Math.max(scale, Math.abs(want[v]));
    }
    if (!(d / scale <= worst.error)) worst = { error: d / scale, row: r };
  }
  return worst;
}

/** uint16 little-endian ids, as nanoGPT's prepare scripts write them (np.uint16.tofile). */
function writeIds(path: string, ids: ArrayLike<number>): void {
  writeFileSync(path, Buffer.from(Uint16Array.from(ids).buffer));
}

describe(`GPT-2 weights in the gpt: logits and greedy continuation against torch (seed ${seed})`, function () {
  this.timeout(300000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-gpt2-forward-'));
  const data = join(dir, 'data');
  const file = join(dir, 'gpt2', 'model.safetensors');
  const options = { contextLength: T, embedding: C, heads: H, layers: L, mlpRatio: 4, data, init: file, evalWindows: 2 };
  const config = (over: Record<string, unknown> = {}): TrainConfigInput => ({
    model: { module: 'gpt', options: { ...options, ...over } },
    seed: 1,
    steps: 2,
    batchSize: 2,
    evalBatch: 2,
    samples: 0,
    optimizer: { lr: 1e-3, excludeFromWeightDecay: 'bert' },
  });
  const next = rng(seed);
  const windows = Int32Array.from({ length: B * T }, () => Math.floor(next() * V));
  const prompt = gpt2Tokenizer().encode(promptText);
  let logits64: Float64Array;
  let logits32: Float64Array;
  let greedy: number[];

  before(function () {
    needTorch(this, 'the GPT-2 forward checks (their reference is torch)');
    // nanoGPT's layout for GPT-2 ids (train.bin and val.bin, no meta): the data the model's vocabulary comes from.
    for (const d of [data, join(dir, 'gpt2')]) mkdirSync(d, { recursive: true });
    writeIds(join(data, 'train.bin'), Array.from({ length: 400 }, () => Math.floor(next() * V)));
    writeIds(join(data, 'val.bin'), Array.from({ length: 100 }, () => Math.floor(next() * V)));
    const request = { windows: Array.from({ length: B }, (_, b) => Array.from(windows.subarray(b * T, (b + 1) * T))), prompt, steps };
    const r = spawnSync(python, [join(root, 'test/fixtures/gpt2_forward.py'), join(dir, 'gpt2'), String(V), String(T), String(C), String(L), String(H), String(seed % 2 ** 31), String(2 * beta)], {
      input: JSON.stringify(request),
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    const out = JSON.parse(r.stdout) as { greedy: number[]; margins: number[]; draws: number };
    if (out.draws > 1) console.log(`      (the fixture drew the weights ${out.draws} times for greedy margins ≥ 2β)`);
    greedy = out.greedy;
    const f64 = (name: string) => {
      const b = readFileSync(join(dir, 'gpt2', name));
      return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
    };
    logits64 = f64('logits64.bin');
    logits32 = f64('logits32.bin');
  });

  describe('on the engine, through Gpt2Checkpoint', () => {
    let e: SoloEngine;
    before(async () => {
      e = await soloEngine('gpt', options, 1, B);
      e.runner.f32.fill(Number.NaN); // every byte a pass reads, it (or the copy-in) writes first
      Gpt2Checkpoint.open(file, e.model.tensors).readInto(e.params);
    });

    it(`the logits of every position equal the float64 forward pass of GPT-2's definition, per row within β = ${beta.toExponential(2)}; torch's float32 pass is within β too`, () => {
      expect(e.model.vocab).to.equal(V);
      e.runner.copyInSerial(2);
      // The windows as token windows of stride T (one more token: the targets of the last position).
      const set = { tokens: Int32Array.from([...windows, 0]), window: T, stride: T };
      const shape = { ...e.shapes.eval, batch: B };
      e.runner.runSerial(shape, 2, { set, indices: [0, 1] });
      const at = e.runner.plan.layouts.eval.at('model.logits') / 4;
      const got = e.runner.f32.subarray(at, at + B * T * V);
      const ours = worstRow(got, logits64);
      const torch32 = worstRow(logits32, logits64);
      expect(ours.error, `row ${ours.row}`).to.be.below(beta);
      expect(torch32.error, `torch float32, row ${torch32.row}`).to.be.below(beta);
      let scale = 0;
      for (const x of logits64) scale = Math.max(scale, Math.abs(x));
      expect(scale).to.be.above(1); // logits far from zero: the comparison means something
    });

    it(`the greedy continuation of "${promptText}" is torch's, token for token (${steps} tokens)`, () => {
      const gpt2 = gpt2Tokenizer();
      const drawn: number[][] = [];
      const recording: Tokenizer = { ...gpt2, decode: (ids) => (drawn.push(Array.from(ids)), gpt2.decode(ids)) };
      const inputsAt = e.runner.slotAt('sample', 'inputs') / 4;
      const logitsAt = e.runner.slotAt('sample', 'logits') / 4;
      e.runner.copyInSerial(1);
      const [text] = sampleTokens({
        count: 1,
        seed: 0,
        temperature: 0,
        tokens: steps,
        prompt: promptText,
        tokenizer: recording,
        contextLength: T,
        lastLogits: (inputs, batch, tokens) => {
          e.runner.i32.set(inputs, inputsAt);
          e.runner.runSerial({ kind: 'sample', batch, tokens, lossScale: 1 }, 1, null);
          return e.runner.f32.subarray(logitsAt, logitsAt + batch * V);
        },
      });
      expect(drawn).to.deep.equal([[...prompt, ...greedy]]);
      expect(text).to.equal(gpt2.decode([...prompt, ...greedy]));
    });
  });

  describe('through the Trainer (model.options.init)', () => {
    it('the params are the file\'s, bit for bit (Adam\'s moments 0); the run samples torch\'s greedy continuation', async () => {
      const trainer = await Trainer.create({ config: config(), threads: 2 });
      try {
        const ck = Gpt2Checkpoint.open(file, trainer.tensors);
        const params = trainer.snapshot();
        const m = trainer.snapshot('m');
        for (const t of trainer.tensors) {
          expect(Buffer.from(params[t.name].buffer).equals(Buffer.from(ck.read(t.name).buffer)), t.name).to.equal(true);
          expect(m[t.name].every((x) => x === 0), t.name).to.equal(true);
        }
        const [text] = await trainer.sample(1, 0, { prompt: promptText, tokens: steps, temperature: 0 });
        expect(text).to.equal(gpt2Tokenizer().decode([...prompt, ...greedy]));
      } finally {
        await trainer.close();
      }
    });

    it('a resume reads its checkpoint, not the init file', async () => {
      const path = join(dir, 'resume.safetensors');
      const first = await Trainer.create({ config: config(), threads: 1 });
      let stepped: Record<string, Float32Array>;
      try {
        await first.step();
        stepped = first.snapshot();
        await first.saveCheckpoint(path);
      } finally {
        await first.close();
      }
      const resumed = await Trainer.create({ config: config(), threads: 1, resume: path });
      try {
        const ck = Gpt2Checkpoint.open(file, resumed.tensors);
        const params = resumed.snapshot();
        for (const t of resumed.tensors) expect(Buffer.from(params[t.name].buffer).equals(Buffer.from(stepped[t.name].buffer)), t.name).to.equal(true);
        expect(resumed.tensors.some((t) => !Buffer.from(params[t.name].buffer).equals(Buffer.from(ck.read(t.name).buffer)))).to.equal(true);
      } finally {
        await resumed.close();
      }
    });

    const bad: Array<[string, Record<string, unknown>, (f: string) => string]> = [
      ['an init file of another shape (the config\'s context is 32)', { contextLength: 32 }, (f) => `GPT-2 checkpoint ${f}: tensor "transformer.wpe.weight" (wpe/embeddings) has shape [16, 48], the model has [32, 48]`],
      ['an init file of another width (the config\'s is 64)', { embedding: 64 }, (f) => `GPT-2 checkpoint ${f}: tensor "transformer.wte.weight" (wte/embeddings) has shape [50257, 48], the model has [50257, 64]`],
      ['an init file without ln_f.bias', { init: join(dir, 'gpt2', 'missing.safetensors') }, (f) => `GPT-2 checkpoint ${f}: the model's tensor layer_norm_f/beta is not in the file`],
      ['an init file that does not exist', { init: join(dir, 'nowhere.safetensors') }, (f) => `GPT-2 checkpoint ${f}: no such file`],
    ];
    for (const [what, over, message] of bad) {
      it(`${what}: shardtrain train says so in one line, exits 1 and writes nothing`, async () => {
        const cfg = join(dir, 'bad.json');
        writeFileSync(cfg, JSON.stringify(config(over)));
        const out = join(dir, 'bad-run');
        const err = await promisify(execFile)(process.execPath, [join(root, 'dist/src/cli/main.js'), 'train', '--config', cfg, '--out', out, '--threads', '1', '--no-progress'], { cwd: root }).then(
          () => null,
          (x: { code: number; stderr: string }) => x,
        );
        const init = (over.init as string | undefined) ?? file;
        expect(err?.code).to.equal(1);
        expect(err?.stderr).to.equal(`shardtrain train: ${message(init)}\n`);
        expect(existsSync(out)).to.equal(false);
      });
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));
});
