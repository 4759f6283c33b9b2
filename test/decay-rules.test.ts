// Exclusion rules and parameter groups compile once into a per-tensor table; excluded tensors decay by 0.
import { expect } from 'chai';
import { bertNoDecay, createOptimizer, hfNoDecay, normalizedWeightDecay } from '../src/index.js';
import { compileDecayTable } from '../src/api/optim.js';

const names = ['bert/encoder/layer_0/attention/output/LayerNorm/gamma', 'layer_norm/gamma', 'dense/bias', 'dense/kernel', 'LayerNorm.weight', 'LayerNorm.bias', 'embeddings/word'];
const excluded = (rule: Parameters<typeof compileDecayTable>[2]) =>
  compileDecayTable(names, 0.01, rule)
    .filter((e) => e.excluded)
    .map((e) => e.name);

describe('weight-decay exclusion rules', () => {
  it("BERT's list excludes layer_norm/gamma and dense/bias, not dense/kernel", () => {
    const table = compileDecayTable(names, 0.01, ['LayerNorm', 'layer_norm', 'bias']);
    const byName = Object.fromEntries(table.map((e) => [e.name, e]));
    expect(byName['layer_norm/gamma'].weightDecay).to.equal(0);
    expect(byName['dense/bias'].weightDecay).to.equal(0);
    expect(byName['dense/kernel'].weightDecay).to.equal(0.01);
    expect(byName['embeddings/word'].weightDecay).to.equal(0.01);
    expect(excluded('bert')).to.deep.equal(excluded([...bertNoDecay]));
  });

  it('regex strings use search semantics, and real regex syntax', () => {
    expect(excluded(['gamma$'])).to.deep.equal(['bert/encoder/layer_0/attention/output/LayerNorm/gamma', 'layer_norm/gamma']);
    expect(excluded([/^dense\//])).to.deep.equal(['dense/bias', 'dense/kernel']);
  });

  it("HF's no_decay preset is a substring match: LayerNorm.weight but not LayerNorm/gamma", () => {
    expect(excluded('hf')).to.deep.equal(['dense/bias', 'LayerNorm.weight', 'LayerNorm.bias']);
    expect(excluded({ substrings: hfNoDecay })).to.deep.equal(excluded('hf'));
  });

  it('explicit names and predicates', () => {
    expect(excluded({ names: ['dense/kernel', 'nope'] })).to.deep.equal(['dense/kernel']);
    expect(excluded((n) => n.startsWith('emb'))).to.deep.equal(['embeddings/word']);
  });

  it('parameter groups: first match wins; exclusion beats a group weight decay', () => {
    const table = compileDecayTable(names, 0.01, 'bert', [
      { match: '^dense/', lrMultiplier: 2, weightDecay: 0.5 },
      { match: 'kernel', lrMultiplier: 3 },
    ]);
    const byName = Object.fromEntries(table.map((e) => [e.name, e]));
    expect(byName['dense/kernel']).to.include({ lrMultiplier: 2, weightDecay: 0.5, group: 0 });
    expect(byName['dense/bias']).to.include({ lrMultiplier: 2, weightDecay: 0, excluded: true });
    expect(byName['embeddings/word']).to.include({ lrMultiplier: 1, weightDecay: 0.01, group: -1 });
  });

  it('an invalid regex is reported with where it came from', () => {
    expect(() => compileDecayTable(names, 0.01, ['ok', '(unclosed'])).to.throw(/excludeFromWeightDecay\[1\]: invalid regular expression "\(unclosed"/);
    expect(() => compileDecayTable(names, 0.01, undefined, [{ match: '[' }])).to.throw(/paramGroups\[0\]\.match\[0\]: invalid regular expression/);
    expect(() => compileDecayTable(names, 0.01, undefined, [{ match: 'x', lrMultiplier: -1 }])).to.throw(/paramGroups\[0\]\.lrMultiplier must be a finite number >= 0, got -1/);
  });

  it('an excluded tensor with zero gradient stays exactly unchanged, while a decayed one shrinks', async () => {
    const bias = Float32Array.from({ length: 100 }, (_, i) => i / 7 - 3);
    const kernel = Float32Array.from({ length: 100 }, (_, i) => i / 5 - 9);
    for (const convention of ['pytorch', 'keras', 'bert', 'l2', 'mxnet-legacy', 'paper'] as const) {
      const opt = await createOptimizer({ params: { 'dense/bias': bias, 'dense/kernel': kernel }, convention, weightDecay: 0.1, lr: 0.01, excludeFromWeightDecay: 'bert', threads: 1 });
      for (let s = 0; s < 5; s++) await opt.step(); // gradients are zero
      expect(Buffer.from(opt.params['dense/bias'].slice().buffer).equals(Buffer.from(bias.buffer)), convention).to.equal(true);
      const k = opt.params['dense/kernel'];
      expect(Math.abs(k.at(0) ?? 0), convention).to.be.below(Math.abs(kernel[0]));
      await opt.close();
    }
  });

  it('normalized weight decay: λ = λ_norm·√(b/(B·T))', () => {
    expect(normalizedWeightDecay({ lambdaNorm: 0.05, batchSize: 128, datasetSize: 50000, epochs: 100 })).to.be.closeTo(0.05 * Math.sqrt(128 / 5e6), 1e-15);
    expect(() => normalizedWeightDecay({ lambdaNorm: 0.05, batchSize: 0, datasetSize: 1, epochs: 1 })).to.throw(/batchSize must be a finite number > 0, got 0/);
  });
});
