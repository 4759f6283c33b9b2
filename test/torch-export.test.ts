// `shardtrain export --to torch`, checked in torch itself (Debian's python3-torch at /usr/bin/python3; .ci/run
// installs it): the exported model's held-out loss equals shardtrain's, one more optimizer step in torch
// equals shardtrain's next step, the data order is the same, and bad files get one-line errors.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, truncateSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Trainer, type StateName, type TrainConfigInput } from '../src/index.js';
import { DataOrder } from '../src/train/data-order.js';
import { readSafetensor, readSafetensorsHeader } from '../src/checkpoint/safetensors.js';
import { torch as charLmTorch } from '../src/models/char-lm.js';
import { torch as gptTorch } from '../src/models/gpt.js';
import { exportToTorch } from '../src/train/export.js';
import { needTorch, python } from './fixtures/torch.js';
import { root, spawnCli } from './fixtures/fault-run.js';
import { tinyConfig, tinyGptConfig } from './fixtures/tiny-config.js';
import { freshSeed } from './reference.js';

const checkScript = join(root, 'scripts/torch/check_export.py');

function py<T>(args: string[]): T {
  const r = spawnSync(python, [checkScript, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`check_export.py ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Tensors of a file written in torch names and layouts, back in shardtrain's (via the model's own mapping). */
function fromTorch(path: string, prefix: string, trainer: Trainer): Record<string, Float32Array> {
  const header = readSafetensorsHeader(path);
  const mapping = (trainer.config.model.module === 'gpt' ? gptTorch : charLmTorch)({ options: trainer.config.model.options, tensors: trainer.tensors });
  return Object.fromEntries(
    trainer.tensors.map((t) => {
      const m = mapping.tensors.find((e) => e.name === t.name)!;
      const x = readSafetensor(header, prefix + m.torchName);
      if (!m.transpose) return [t.name, x];
      const [rows, cols] = t.shape; // shardtrain [in, out]; the file holds [out, in]
      const back = new Float32Array(x.length);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) back[i * cols + j] = x[j * rows + i];
      return [t.name, back];
    }),
  );
}

describe('export --to torch', function () {
  this.timeout(120000);
  let dir: string;
  before(function () {
    needTorch(this, 'the torch export checks');
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'shardtrain-torch-'))));

  async function trained(over: Partial<TrainConfigInput>, steps: number, base = tinyConfig): Promise<{ trainer: Trainer; checkpoint: string }> {
    const trainer = await Trainer.create({ config: base(over), threads: 2 });
    for (let i = 0; i < steps; i++) await trainer.step();
    const checkpoint = join(dir, 'ckpt.safetensors');
    await trainer.saveCheckpoint(checkpoint);
    return { trainer, checkpoint };
  }

  it('char-lm: the exported model\'s held-out loss in torch equals shardtrain\'s (relative difference <= 1e-5), and the data order is the same', async () => {
    const { trainer, checkpoint } = await trained({}, 8);
    try {
      const out = join(dir, 'x.safetensors');
      const r = await exportToTorch(checkpoint, out, () => expect.fail('no warning expected'));
      expect(r).to.include({ optimizer: 'AdamW', step: 8, tensors: trainer.tensors.length });
      const ours = await trainer.evaluate();
      const theirs = py<{ evalLoss: number }>(['eval', out]).evalLoss;
      expect(Math.abs(theirs - ours) / ours, `torch ${theirs}, shardtrain ${ours}`).to.be.at.most(1e-5);
      const order = py<{ batch: number; batches: number[][] }>(['order', out, '3']);
      expect(order.batch).to.equal(trainer.batchIndex);
      const node = new DataOrder(trainer.counts.train, trainer.config.batchSize, trainer.config.seed);
      order.batches.forEach((b, k) => expect(b, `batch ${order.batch + k}`).to.deep.equal(Array.from(node.slice(order.batch + k, 0, trainer.config.batchSize))));
    } finally {
      await trainer.close();
    }
  });

  for (const tieEmbeddings of [true, false]) {
    it(`gpt (${tieEmbeddings ? 'head tied to the token embedding' : 'its own head'}): held-out loss in torch equals shardtrain's (relative 1e-5); the same windows`, async () => {
      const options = { contextLength: 8, embedding: 16, heads: 2, layers: 2, mlpRatio: 2, evalWindows: 8, tieEmbeddings };
      const { trainer, checkpoint } = await trained({ model: { module: 'gpt', options } }, 6, tinyGptConfig);
      try {
        const out = join(dir, 'g.safetensors');
        const r = await exportToTorch(checkpoint, out, () => expect.fail('no warning expected'));
        expect(r.optimizer).to.equal('AdamW');
        const names = [...readSafetensorsHeader(out).tensors.keys()];
        expect(names).to.include.members(['wte.weight', 'wpe.weight', 'blocks.1.attn.qkv.weight', 'blocks.0.ln_2.bias', 'ln_f.weight', 'optimizer.exp_avg.blocks.0.mlp.proj.weight']);
        expect(names.includes('lm_head.weight')).to.equal(!tieEmbeddings);
        const ours = await trainer.evaluate();
        const theirs = py<{ evalLoss: number }>(['eval', out]).evalLoss;
        expect(Math.abs(theirs - ours) / ours, `torch ${theirs}, shardtrain ${ours}`).to.be.at.most(1e-5);
        const order = py<{ batch: number; batches: number[][] }>(['order', out, '2']);
        const node = new DataOrder(trainer.counts.train, trainer.config.batchSize, trainer.config.seed);
        order.batches.forEach((b, k) => expect(b).to.deep.equal(Array.from(node.slice(order.batch + k, 0, trainer.config.batchSize))));
      } finally {
        await trainer.close();
      }
    });
  }

  for (const convention of ['pytorch', 'l2'] as const) {
    for (const amsgrad of [false, true]) {
      it(`${convention}${amsgrad ? ' + AMSGrad' : ''}: one more step in torch.optim.${convention === 'pytorch' ? 'AdamW' : 'Adam'} from the export equals shardtrain's next step (float32 rounding)`, async () => {
        // Clipping off: the step under test is the optimizer's alone. A warmup schedule: the lr of the step must carry over.
        const { trainer, checkpoint } = await trained({ optimizer: { convention, amsgrad, lr: 0.01, weightDecay: 0.1, excludeFromWeightDecay: 'bert', schedule: { name: 'linear', warmupSteps: 10 } } }, 6);
        try {
          const out = join(dir, 'x.safetensors');
          await exportToTorch(checkpoint, out, () => undefined);
          const seed = freshSeed();
          const after = join(dir, 'after.safetensors');
          const t = py<{ step: number; lr: number }>(['step', out, String(seed), after]);
          expect(t.step).to.equal(7);
          const grads = fromTorch(`${after}.grads.safetensors`, '', trainer);
          const opt = trainer.optimizer;
          const kinds: Array<readonly [string, StateName]> = [['', 'params'], ['optimizer.exp_avg.', 'm'], ['optimizer.exp_avg_sq.', 'v'], ...(amsgrad ? [['optimizer.max_exp_avg_sq.', 'vmax'] as const] : [])];
          const before = kinds.map(([, state]) => trainer.snapshot(state));
          for (let r = 0; r < trainer.replicas; r++) opt.setGrads(grads, r); // the mean of equal slots is the gradient itself
          const step = await opt.step();
          expect(step.lr).to.be.closeTo(t.lr, 1e-12);
          const [p0, m0, v0] = before;
          const [beta1, beta2] = opt.options.betas;
          const decay = new Map(opt.decayTable.map((e) => [e.name, e.weightDecay]));
          kinds.forEach(([prefix, state], k) => {
            const ours = trainer.snapshot(state);
            const theirs = fromTorch(after, prefix, trainer);
            for (const name of Object.keys(ours)) {
              const [a, b, old] = [ours[name], theirs[name], before[k][name]];
              const l2 = convention === 'l2' ? decay.get(name)! : 0;
              for (let i = 0; i < a.length; i++) {
                // An a-priori float32 rounding bound. Both sides compute the same formula with correctly rounded
                // operations, in a different order (torch divides √v by √bc2 where shardtrain multiplies by
                // 1/√bc2; torch decays p in place, then addcdiv). A value computed with n rounded operations from
                // terms t_j is within n·2^-24·Σ|t_j| of the exact value, so the two sides are within twice that:
                //   m' = β1·m + (1−β1)·(g + λp)         n = 4, terms β1|m| + (1−β1)(|g| + λ|p|)
                //   v' = β2·v + (1−β2)·(g + λp)²        n = 6, terms β2|v| + (1−β2)(|g| + λ|p|)²   (v_max: the same)
                //   p' = p·(1−lr·λ) − α·m'/(√v'·s + ε)  n = 10 (with the m', v' it reads), terms |p| + |p' − p|
                const g = Math.abs(grads[name][i]) + l2 * Math.abs(p0[name][i]);
                const [n, terms] =
                  state === 'm'
                    ? [4, beta1 * Math.abs(m0[name][i]) + (1 - beta1) * g]
                    : state === 'params'
                      ? [10, Math.abs(old[i]) + Math.abs(a[i] - old[i])]
                      : [6, beta2 * Math.abs(v0[name][i]) + (1 - beta2) * g * g];
                const bound = 2 * n * 2 ** -24 * terms + 2 ** -126;
                if (!(Math.abs(a[i] - b[i]) <= bound)) expect.fail(`seed ${seed}, ${prefix}${name}[${i}]: was ${old[i]}, shardtrain ${a[i]}, torch ${b[i]}, g ${grads[name][i]}, p ${p0[name][i]}`);
              }
            }
          });
        } finally {
          await trainer.close();
        }
      });
    }
  }

  it('continue.py goes on training: 1 process and torchrun with 2 ranks (DDP, half a batch each) reach the same held-out loss', async () => {
    const { trainer, checkpoint } = await trained({}, 5);
    await trainer.close();
    const out = join(dir, 'x.safetensors');
    await exportToTorch(checkpoint, out, () => undefined);
    const continueScript = join(root, 'scripts/torch/continue.py');
    const heldOut = (stdout: string) => {
      const m = /held-out loss (\d+\.\d+)\s*$/.exec(stdout.trim());
      expect(m, stdout).to.not.equal(null);
      return Number(m![1]);
    };
    const one = spawnSync(python, [continueScript, out, '--steps', '8'], { encoding: 'utf8' });
    expect(one.status, one.stderr).to.equal(0);
    expect(one.stdout).to.match(/^continuing \S+ at step 5 \(torch [^,]+, AdamW, 1 rank\); held-out loss \d/);
    const two = spawnSync('/usr/bin/torchrun', ['--standalone', '--redirects', '1', '--tee', '1', '--nproc_per_node=2', continueScript, out, '--steps', '8'], { encoding: 'utf8' });
    expect(two.status, two.stderr).to.equal(0);
    const rank0 = two.stdout.split('\n').filter((l) => l.startsWith('[default0]:')).map((l) => l.slice('[default0]:'.length)).join('\n');
    expect(rank0).to.include('2 ranks');
    // The same batches and steps; only the order of the gradient sums differs (float32 rounding, then 8 steps).
    expect(heldOut(rank0)).to.be.closeTo(heldOut(one.stdout), 2e-4);
  });

  it('keras (no torch optimizer): the weights export, the command says in one line that the optimizer state does not', async () => {
    const { trainer, checkpoint } = await trained({ optimizer: { convention: 'keras', lr: 0.01 } }, 3);
    await trainer.close();
    const out = join(dir, 'k.safetensors');
    const r = await spawnCli(['export', checkpoint, '--to', 'torch', '--out', out]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('convention keras has no torch optimizer: the weights are exported, the optimizer state is not');
    const names = [...readSafetensorsHeader(out).tensors.keys()];
    expect(names.some((n) => n.startsWith('optimizer.'))).to.equal(false);
    expect(names).to.include('hidden.0.weight');
  });

  describe('bad input: one line on stderr, exit 1, nothing written', () => {
    const cases: Array<[string, (checkpoint: string) => string[], RegExp]> = [
      ['a missing file', () => ['export', join(tmpdir(), 'no-such.safetensors'), '--to', 'torch', '--out', 'OUT'], /^shardtrain export: export: \S+no-such\.safetensors: no such file or directory\n$/],
      ['an unknown framework', (c) => ['export', c, '--to', 'tensorflow', '--out', 'OUT'], /^shardtrain export: --to must be torch, got "tensorflow"\n$/],
      [
        'a truncated checkpoint',
        (c) => {
          truncateSync(c, statSync(c).size - 10);
          return ['export', c, '--to', 'torch', '--out', 'OUT'];
        },
        /^shardtrain export: checkpoint \S+: truncated: header describes \d+ bytes, file has \d+\n$/,
      ],
      [
        'a foreign safetensors file (no shardtrain metadata)',
        (c) => {
          const foreign = join(dirname(c), 'foreign.safetensors');
          const head = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }).padEnd(48, ' '));
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(head.length));
          writeFileSync(foreign, Buffer.concat([len, head, Buffer.alloc(4)]));
          return ['export', foreign, '--to', 'torch', '--out', 'OUT'];
        },
        /^shardtrain export: checkpoint \S+foreign\.safetensors: __metadata__\.step is missing or not a number: not a shardtrain checkpoint\n$/,
      ],
    ];
    for (const [what, args, message] of cases) {
      it(what, async () => {
        const { trainer, checkpoint } = await trained({}, 1);
        await trainer.close();
        const copy = join(dir, 'copy.safetensors');
        copyFileSync(checkpoint, copy);
        const out = join(dir, 'out.safetensors');
        const r = await spawnCli(args(copy).map((a) => (a === 'OUT' ? out : a)));
        expect(r.code).to.equal(1);
        expect(r.stderr).to.match(message);
        expect(() => statSync(out)).to.throw();
      });
    }
  });
});
