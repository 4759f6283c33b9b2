// opt.stateDict() / opt.loadStateDict(): a copy out and a copy in of everything a step depends on. A run
// that goes on from a loaded dict must give the same bits as the run it was taken from; a bad dict changes
// nothing; and the optimizer keeps no reference to the caller's initial arrays.
import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createOptimizer, type OptimizerStateDict, type ShardedAdamW } from '../src/index.js';
import { freshSeed, randomArray, rng } from './reference.js';

const sizes = { 'enc/kernel': 700, 'enc/bias': 37, 'head/LayerNorm/gamma': 301 } as const;
type Name = keyof typeof sizes;
const names = Object.keys(sizes) as Name[];

function randomParams(rand: () => number): Record<Name, Float32Array> {
  return Object.fromEntries(names.map((n) => [n, randomArray(sizes[n], rand)])) as Record<Name, Float32Array>;
}

async function make(params: Record<string, Float32Array>, threads: number, amsgrad: boolean): Promise<ShardedAdamW> {
  // 256-float shards: every tensor but the bias crosses a shard boundary.
  return createOptimizer({ params, threads, amsgrad, maxShardParams: 256, dispatch: threads > 1 ? 'pool' : 'inline', lr: 1e-2, weightDecay: 0.1, excludeFromWeightDecay: 'bert', clipGlobalNorm: 1, schedule: { name: 'cosine', warmupSteps: 2, totalSteps: 20 } });
}

function bitsOf(dict: OptimizerStateDict): string {
  const parts = [String(dict.step)];
  for (const state of ['params', 'm', 'v', 'vmax'] as const) {
    const values = dict[state];
    if (values) for (const n of names) parts.push(Buffer.from(values[n].buffer, values[n].byteOffset, values[n].byteLength).toString('base64'));
  }
  return parts.join('|');
}

describe('stateDict / loadStateDict', () => {
  for (const threads of [1, 2, 3]) {
    for (const amsgrad of [false, true]) {
      it(`${threads} thread(s), amsgrad ${amsgrad}: 5 steps, dict into a fresh optimizer, 3 more steps = 8 steps`, async () => {
        const seed = freshSeed();
        const rand = rng(seed);
        const grads = Array.from({ length: 8 }, () => randomParams(rand));
        const a = await make(randomParams(rand), threads, amsgrad);
        const b = await make(randomParams(rand), threads, amsgrad);
        try {
          for (let t = 0; t < 5; t++) await a.step(grads[t]);
          const dict = a.stateDict();
          expect(dict.step).to.equal(5);
          expect(dict.vmax !== undefined).to.equal(amsgrad);
          b.loadStateDict(dict);
          expect(b.globalStep).to.equal(5);
          expect(bitsOf(b.stateDict()), `seed ${seed}`).to.equal(bitsOf(dict));
          for (let t = 5; t < 8; t++) {
            await a.step(grads[t]);
            await b.step(grads[t]);
          }
          expect(bitsOf(b.stateDict()), `seed ${seed}`).to.equal(bitsOf(a.stateDict()));
        } finally {
          await a.close();
          await b.close();
        }
      });
    }
  }

  it('returns copies: changing the dict does not change the optimizer', async () => {
    const opt = await make(randomParams(rng(1)), 1, false);
    try {
      const dict = opt.stateDict();
      const before = opt.params['enc/kernel'].at(3);
      dict.params['enc/kernel'][3] = 1234;
      expect(opt.params['enc/kernel'].at(3)).to.equal(before);
    } finally {
      await opt.close();
    }
  });

  describe('a bad dict is refused before anything is written', () => {
    const cases: Array<[string, (d: OptimizerStateDict) => unknown, string]> = [
      ['a missing tensor', (d) => ({ ...d, m: { ...d.m, 'enc/bias': undefined } }), 'state dict: m["enc/bias"] must be a Float32Array, got nothing'],
      ['an unknown tensor', (d) => ({ ...d, v: { ...d.v, 'dec/kernel': new Float32Array(3) } }), 'state dict: v["dec/kernel"] is not a tensor of this optimizer'],
      ['a wrong length', (d) => ({ ...d, params: { ...d.params, 'enc/kernel': new Float32Array(699) } }), 'state dict: params["enc/kernel"] has 699 elements, expected 700'],
      ['a plain array', (d) => ({ ...d, params: { ...d.params, 'enc/bias': Array.from(d.params['enc/bias']) } }), 'state dict: params["enc/bias"] must be a Float32Array'],
      ['a NaN', (d) => ({ ...d, v: { ...d.v, 'head/LayerNorm/gamma': Float32Array.from(d.v['head/LayerNorm/gamma'], (x, i) => (i === 300 ? Number.NaN : x)) } }), 'state dict: v["head/LayerNorm/gamma"][300] is NaN: states must be finite'],
      ['a negative step', (d) => ({ ...d, step: -1 }), 'state dict: step must be a non-negative integer, got -1'],
      ['a fractional step', (d) => ({ ...d, step: 2.5 }), 'state dict: step must be a non-negative integer, got 2.5'],
      ['v_max without amsgrad', (d) => ({ ...d, vmax: d.m }), 'state dict: has vmax, but amsgrad is off'],
      ['no m', (d) => ({ ...d, m: null }), 'state dict: m must be an object of named Float32Arrays, got null'],
    ];
    for (const [what, spoil, message] of cases) {
      it(what, async () => {
        const opt = await make(randomParams(rng(2)), 2, false);
        try {
          const grads = randomParams(rng(3));
          await opt.step(grads);
          const before = bitsOf(opt.stateDict());
          // The params of the spoilt dict differ from the optimizer's, so a partial write would show.
          const other = { ...opt.stateDict(), params: randomParams(rng(4)), step: 9 };
          expect(() => opt.loadStateDict(spoil(other) as OptimizerStateDict)).to.throw(message);
          expect(bitsOf(opt.stateDict())).to.equal(before);
          expect(opt.globalStep).to.equal(1);
        } finally {
          await opt.close();
        }
      });
    }
    it('v_max missing with amsgrad', async () => {
      const opt = await make(randomParams(rng(5)), 1, true);
      try {
        const { vmax, ...rest } = opt.stateDict();
        expect(vmax).to.not.equal(undefined);
        expect(() => opt.loadStateDict(rest)).to.throw('state dict: vmax is missing (amsgrad is on)');
      } finally {
        await opt.close();
      }
    });
  });

  it('keeps no reference to the initial arrays (opt.options holds names and sizes only)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let initial: Float32Array | null = new Float32Array(1 << 20).fill(0.5);
    const ref = new WeakRef(initial);
    const opt = await createOptimizer({ params: { big: initial }, threads: 1 });
    initial = null;
    try {
      expect(Object.keys(opt.options)).to.not.include('initial');
      expect(opt.options.tensors).to.deep.equal([{ name: 'big', size: 1 << 20 }]);
      // WeakRefs are cleared only after the job that created them: let it end, then collect.
      for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
        await new Promise((r) => setTimeout(r, 10));
        gc();
      }
      expect(ref.deref()).to.equal(undefined);
      expect(opt.params.big.at(0)).to.equal(0.5);
    } finally {
      await opt.close();
    }
  });
});
