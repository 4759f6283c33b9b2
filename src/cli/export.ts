// `shardtrain export CHECKPOINT|RUN_DIR --to torch --out FILE.safetensors`: see src/checkpoint/torch-export.ts.
import type { Command } from 'commander';
import { exportToTorch } from '../train/export.js';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a checkpoint in another framework\'s names and layouts (torch: weights, AdamW state and schedule position)')
    .argument('<checkpoint>', 'a checkpoint file, or a run directory (its newest checkpoint that verifies)')
    .requiredOption('--to <framework>', 'target framework: torch')
    .requiredOption('-o, --out <file>', 'output file (.safetensors); the data goes beside it as <file>.data.safetensors')
    .action(async (source: string, opts: { to: string; out: string }) => {
      try {
        if (opts.to !== 'torch') throw new Error(`--to must be torch, got ${JSON.stringify(opts.to)}`);
        const r = await exportToTorch(source, opts.out, (line) => process.stderr.write(`${line}\n`));
        process.stdout.write(`exported step ${r.step} of ${r.checkpoint}: ${r.tensors} tensors to ${r.file}, data to ${r.dataFile}\n`);
        if (r.optimizer === null) {
          process.stdout.write(`${r.setting} has no torch optimizer: the weights are exported, the optimizer state is not\n`);
        } else {
          process.stdout.write(`optimizer state for torch.optim.${r.optimizer}${r.optimizer === 'Adam' ? '(weight_decay)' : ''}; continue with: /usr/bin/python3 scripts/torch/continue.py ${r.file} --steps N\n`);
        }
      } catch (err) {
        process.stderr.write(`shardtrain export: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      }
    });
}
