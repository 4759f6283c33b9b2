// The GPT-2 import's file side: small random GPT-2 checkpoints that torch writes in Hugging Face's layout
// (test/fixtures/gpt2_files.py: with and without the `transformer.` prefix, float32, float16 and bfloat16,
// the attention mask buffers, a tied lm_head), mapped onto the tensor list of shardtrain's own GPT and read
// into views: every value equals, bit for bit, what torch holds under our name (as float32). Every bad file
// is one line naming the tensor (and both shapes).

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gpt2Checkpoint, Gpt2ImportError, gpt2TensorName } from '../src/checkpoint/gpt2-import.js';
import { readSafetensor, readSafetensorsHeader } from '../src/checkpoint/safetensors.js';
import { SplitTensorView, type TensorView } from '../src/memory/tensor-views.js';
import type { TensorSpec } from '../src/memory/layout.js';
import { startModel } from '../src/models/model-module.js';
import { root } from './fixtures/fault-run.js';
import { freshSeed } from './reference.js';
import { needTorch, python } from './fixtures/torch.js';

const seed = freshSeed();

/** Views as the shard memories give them: plain arrays, and one tensor split in three parts (it spans shards). */
function viewsFor(tensors: readonly TensorSpec[], split: string): Record<string, TensorView> {
  return Object.fromEntries(
    tensors.map((t) => {
      if (t.name !== split) return [t.name, new Float32Array(t.size).fill(Number.NaN)];
      const a = Math.floor(t.size / 3);
      return [t.name, new SplitTensorView([new Float32Array(a).fill(Number.NaN), new Float32Array(1).fill(Number.NaN), new Float32Array(t.size - a - 1).fill(Number.NaN)])];
    }),
  );
}

const bits = (x: Float32Array): number[] => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));

describe(`GPT-2 checkpoint import (seed ${seed})`, function () {
  this.timeout(120000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-gpt2-'));
  let tensors: TensorSpec[] = [];
  let untiedTensors: TensorSpec[] = [];
  const options = { contextLength: 8, embedding: 16, heads: 2, layers: 2, mlpRatio: 4 };

  before(async function () {
    needTorch(this, 'the GPT-2 import checks (their files are written by torch)');
    // The GPT's own tensor list (names, shapes, order) for these options; its vocabulary is the corpus' characters.
    tensors = (await startModel({ module: 'gpt', options, seed: 1, backend: 'cpu' })).tensors;
    untiedTensors = (await startModel({ module: 'gpt', options: { ...options, tieEmbeddings: false }, seed: 1, backend: 'cpu' })).tensors;
    const vocab = tensors.find((t) => t.name === 'wte/embeddings')!.shape[0];
    const r = spawnSync(python, [join(root, 'test/fixtures/gpt2_files.py'), dir, String(vocab), '8', '16', '2', String(seed % 2 ** 31)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  });

  for (const name of ['plain-f32', 'prefix-f32-tied', 'prefix-f16', 'plain-bf16']) {
    it(`${name}: every tensor of the GPT, bit for bit as torch holds it in float32`, () => {
      const ck = Gpt2Checkpoint.open(join(dir, `${name}.safetensors`), tensors);
      expect(ck.prefix).to.equal(name.startsWith('prefix') ? 'transformer.' : '');
      expect(ck.dims).to.deep.equal({ vocab: tensors[0].shape[0], contextLength: 8, embedding: 16, layers: 2, mlpHidden: 64 });
      const views = viewsFor(tensors, 'block_1/attn/qkv/kernel');
      ck.readInto(views);
      const expected = readSafetensorsHeader(join(dir, `expected-${name}.safetensors`));
      expect([...expected.tensors.keys()].sort()).to.deep.equal(tensors.map((t) => t.name).sort());
      for (const t of tensors) {
        const v = views[t.name];
        const got = v instanceof SplitTensorView ? v.slice() : v;
        expect(bits(got), t.name).to.deep.equal(bits(readSafetensor(expected, t.name)));
      }
      expect(bits(ck.read('wte/embeddings'))).to.deep.equal(bits(readSafetensor(expected, 'wte/embeddings')));
    });
  }

  it('names: GPT-2 → shardtrain, buffers ignored, anything else unknown', () => {
    expect(gpt2TensorName('h.11.attn.c_attn.weight')).to.equal('block_11/attn/qkv/kernel');
    expect(gpt2TensorName('h.0.mlp.c_proj.bias')).to.equal('block_0/mlp/proj/bias');
    expect(gpt2TensorName('ln_f.weight')).to.equal('layer_norm_f/gamma');
    expect(gpt2TensorName('h.3.attn.bias')).to.equal(null);
    expect(gpt2TensorName('h.3.attn.masked_bias')).to.equal(null);
    expect(gpt2TensorName('h.03.ln_1.weight')).to.equal(undefined);
    expect(gpt2TensorName('h.0.attn.c_attn.kernel')).to.equal(undefined);
  });

  const bad: Array<[string, () => TensorSpec[], string]> = [
    ['wrong-shape', () => tensors, 'tensor "h.1.mlp.c_fc.weight" (block_1/mlp/fc/kernel) has shape [16, 32], the model has [16, 64]'],
    ['missing', () => tensors, "the model's tensor layer_norm_f/beta is not in the file"],
    ['more-layers', () => tensors, 'tensor "h.2.ln_1.weight" (block_2/layer_norm_1/gamma) is not in the model: the file has more layers or another layout'],
    ['untied', () => tensors, "lm_head.weight differs from wte.weight: an untied head, which is not read (shardtrain's GPT-2 ties its head to wte)"],
    ['plain-f32', () => untiedTensors, "the model's tensor lm_head/kernel is not in the file (GPT-2 ties its head to wte: use a tied head)"],
    ['mixed-prefix', () => tensors, 'tensor "wpe.weight" lacks the "transformer." prefix that the file\'s other tensors have'],
    ['int-weight', () => tensors, 'tensor "h.0.attn.c_attn.weight" is U8; float32, float16 and bfloat16 are read'],
    ['foreign-name', () => tensors, 'tensor "h.0.attn.rotary.weight" is not one of GPT-2\'s'],
    ['no-such-file', () => tensors, 'no such file'],
  ];
  for (const [name, list, message] of bad) {
    it(`${name}: refused before any value is read, in one line`, () => {
      const path = join(dir, `${name}.safetensors`);
      expect(() => Gpt2Checkpoint.open(path, list())).to.throw(Gpt2ImportError, `GPT-2 checkpoint ${path}: ${message}`);
    });
  }

  after(() => rmSync(dir, { recursive: true, force: true }));
});
