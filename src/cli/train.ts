// `shardtrain train [--config FILE] [--set KEY=VALUE]... [--threads N] [--steps N] [--out DIR] [--resume DIR] [--dry-run]`
import type { Command } from 'commander';
import { planTraining, runTraining } from '../train/run.js';
import { collect, kSetHelp, positiveInt } from './flags.js';

/** Exit codes after a signal, as shells report them: 128 + the signal's number. */
const kSignalExitCodes = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof kSignalExitCodes;

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a model data-parallel on every core (one replica per thread), with checkpoints and a loss curve')
    .option('-c, --config <file>', 'training config (JSON); default: the built-in config/char-lm.json (or, with --resume, the checkpoint\'s)')
    .option('--set <key=value>', kSetHelp, collect, [])
    .option('-t, --threads <n>', 'worker threads (default: config.threads, else all cores)', positiveInt('--threads'))
    .option('-s, --steps <n>', 'train until this step (overrides config.steps)', positiveInt('--steps'))
    .option('-o, --out <dir>', 'run directory (default: runs/<config>-<time>, or the resumed run)')
    .option('-r, --resume <dir>', 'continue a run from its checkpoint (a run directory or a .safetensors file)')
    .option('--no-progress', 'print a line every 5% instead of a progress bar')
    .option('--dry-run', 'print the memory plan (what the run would allocate) and stop; exit 1 when it cannot fit')
    .action(async (opts: { config?: string; set: string[]; threads?: number; steps?: number; out?: string; resume?: string; progress: boolean; dryRun?: boolean }) => {
      if (opts.dryRun) {
        try {
          process.stdout.write(`${await planTraining({ configPath: opts.config, sets: opts.set, threads: opts.threads, steps: opts.steps, resume: opts.resume })}\n`);
        } catch (err) {
          process.stderr.write(`shardtrain train: ${(err as Error).message.split('\n')[0]}\n`);
          process.exitCode = 1;
        }
        return;
      }
      const stopSignal = { stopped: false };
      let received: StopSignal = 'SIGINT';
      const onSignal = (signal: StopSignal) => {
        if (stopSignal.stopped) {
          // Second signal: leave now, even in the middle of a checkpoint write (it yields between pieces).
          // Every file under a checkpoint name is complete (temp + fsync + rename); the temp file of a write
          // cut short here is never taken for one, and the next run in the directory removes it.
          process.exit(kSignalExitCodes[signal]);
        }
        stopSignal.stopped = true;
        received = signal;
        process.stderr.write(`\n${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'}: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)\n`);
      };
      const handlers = (Object.keys(kSignalExitCodes) as StopSignal[]).map((signal) => [signal, () => onSignal(signal)] as const);
      for (const [signal, handler] of handlers) process.on(signal, handler);
      try {
        const summary = await runTraining({
          configPath: opts.config,
          sets: opts.set,
          threads: opts.threads,
          steps: opts.steps,
          out: opts.out,
          resume: opts.resume,
          progress: opts.progress === false ? false : undefined,
          stopSignal,
        });
        if (summary.interrupted) process.exitCode = kSignalExitCodes[received];
      } catch (err) {
        process.stderr.write(`shardtrain train: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      } finally {
        for (const [signal, handler] of handlers) process.off(signal, handler);
      }
    });
}
