// `shardtrain sample RUN_DIR|CHECKPOINT [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--seed N] [--count N]`
import type { Command } from 'commander';
import { parseNumber, positiveInt } from './flags.js';
import { sampleFromCheckpoint } from '../train/sample.js';

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description('write text with a trained model (any model module with sample()), from a run directory or a checkpoint')
    .argument('<source>', 'a run directory (its newest checkpoint that verifies) or a .safetensors checkpoint')
    .option('-p, --prompt <text>', 'text to continue (sequence models; default: the model module decides)')
    .option('-n, --tokens <n>', 'tokens to generate per sample', positiveInt('--tokens'))
    .option('-T, --temperature <t>', 'softmax temperature (0: always the most likely token)', parseNumber('--temperature', (n) => Number.isFinite(n) && n >= 0, 'a number ≥ 0'))
    .option('-k, --top-k <k>', 'draw from the k most likely tokens only (nanoGPT\'s --top_k; default: all)', positiveInt('--top-k'))
    .option('--seed <n>', 'seed of the draws (default: the run seed)', parseNumber('--seed', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer'))
    .option('--count <n>', 'samples to write', positiveInt('--count'), 1)
    .action(async (source: string, opts: { prompt?: string; tokens?: number; temperature?: number; topK?: number; seed?: number; count: number }) => {
      try {
        const r = await sampleFromCheckpoint({ source, ...opts });
        process.stderr.write(`${r.checkpoint} (step ${r.step})\n`);
        for (const s of r.samples) process.stdout.write(`${s}\n`);
      } catch (err) {
        process.stderr.write(`shardtrain sample: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      }
    });
}
