// npm run soak [-- --config config/char-lm.json --steps 10000 --minutes 30 --every 100 --out runs/soak]
// A long run of the default model that watches for leaks: every `every` steps it records RSS, the JS heap,
// the mean step time since the last record, and tfjs's live tensors on the main thread and in every replica
// thread. Evaluations and checkpoints run on the way (every 1000 steps) so their paths are soaked too.
// It stops at --steps or --minutes, whichever comes first, and then checks, after warm-up (the first 10 % of
// the records, at least 1000 steps): RSS grows by at most 5 %, and the tensor counts never change.
// Writes soak.jsonl (one record per line) and soak.json (the verdict) into --out; exits 1 on a failed check.

import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadConfigFile, Trainer } from '../src/index.js';
import { tf } from '../src/train/tf.js';

interface SoakRecord {
  readonly step: number;
  readonly elapsedSec: number;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly msPerStep: number;
  readonly loss: number;
  readonly mainTensors: number;
  /** Live tfjs tensors per replica thread, in thread-id order. */
  readonly replicaTensors: number[];
}

const kMaxRssGrowth = 0.05;
const kCheckEvery = 1000;

const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

function parseArgs(): { config: string; steps: number; minutes: number; every: number; out: string; threads?: number } {
  const positive = (flag: string) => (v: string): number => {
    const n = Number(v);
    if (!(n > 0)) throw new Error(`${flag} must be a positive number, got ${v}`);
    return n;
  };
  const program = new Command('soak')
    .option('-c, --config <file>', 'training config', 'config/char-lm.json')
    .option('-s, --steps <n>', 'optimizer steps', positive('--steps'), 10000)
    .option('-m, --minutes <n>', 'stop after this many minutes at the latest', positive('--minutes'), 30)
    .option('-e, --every <n>', 'steps between records', positive('--every'), 100)
    .option('-t, --threads <n>', 'pool threads (default: all cores)', positive('--threads'))
    .option('-o, --out <dir>', 'where soak.jsonl and soak.json go', 'runs/soak')
    .parse(process.argv);
  return program.opts();
}

async function replicaTensors(trainer: Trainer): Promise<number[]> {
  const infos = await trainer.replicaInfo();
  if (new Set(infos.map((i) => i.threadId)).size !== trainer.threads) throw new Error(`replicaInfo reached threads ${infos.map((i) => i.threadId)}, expected ${trainer.threads} distinct`);
  return infos.map((i) => i.numTensors);
}

/** The first record after warm-up: 10 % of the run, at least 1000 steps. */
function warmIndex(records: readonly SoakRecord[]): number {
  const last = records[records.length - 1].step;
  const after = Math.max(1000, Math.floor(last / 10));
  const i = records.findIndex((r) => r.step >= after);
  return i < 0 ? records.length - 1 : i;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const base = loadConfigFile(args.config);
  // checkpointEvery and evalEvery are driven here, so the run's own ones are left out.
  const config = { ...base, steps: args.steps, checkpointEvery: undefined, evalEvery: undefined };
  mkdirSync(args.out, { recursive: true });
  const log = join(args.out, 'soak.jsonl');
  writeFileSync(log, '');
  const trainer = await Trainer.create({ config, threads: args.threads, where: `config ${args.config}` });
  const records: SoakRecord[] = [];
  const t0 = performance.now();
  const deadline = t0 + args.minutes * 60_000;
  try {
    let windowStart = performance.now();
    let loss = Number.NaN;
    const record = async (): Promise<void> => {
      const now = performance.now();
      const mem = process.memoryUsage();
      const steps = records.length === 0 ? trainer.globalStep : trainer.globalStep - records[records.length - 1].step;
      const r: SoakRecord = {
        step: trainer.globalStep,
        elapsedSec: Math.round((now - t0) / 100) / 10,
        rssMiB: mib(mem.rss),
        heapUsedMiB: mib(mem.heapUsed),
        msPerStep: steps > 0 ? Math.round(((now - windowStart) / steps) * 100) / 100 : 0,
        loss,
        mainTensors: tf.memory().numTensors,
        replicaTensors: await replicaTensors(trainer),
      };
      records.push(r);
      appendFileSync(log, `${JSON.stringify(r)}\n`);
      process.stdout.write(`step ${r.step}  rss ${r.rssMiB} MiB  heap ${r.heapUsedMiB} MiB  ${r.msPerStep} ms/step  loss ${loss.toFixed(4)}  tensors main ${r.mainTensors}, replicas ${r.replicaTensors.join('/')}\n`);
      windowStart = performance.now();
    };
    await record();
    while (trainer.globalStep < args.steps && performance.now() < deadline) {
      loss = (await trainer.step()).loss;
      const step = trainer.globalStep;
      if (step % kCheckEvery === 0) {
        await trainer.evaluate();
        trainer.saveCheckpoint(join(args.out, 'soak.safetensors'));
        trainer.sample(2);
      }
      if (step % args.every === 0) await record();
    }
    if (records[records.length - 1].step !== trainer.globalStep) await record();
  } finally {
    await trainer.close();
  }

  const warm = records[warmIndex(records)];
  const last = records[records.length - 1];
  const maxRss = Math.max(...records.slice(records.indexOf(warm)).map((r) => r.rssMiB));
  const growth = (last.rssMiB - warm.rssMiB) / warm.rssMiB;
  const tensorsOf = (r: SoakRecord) => JSON.stringify([r.mainTensors, r.replicaTensors]);
  const tensorsStable = records.slice(records.indexOf(warm)).every((r) => tensorsOf(r) === tensorsOf(warm));
  const verdict = {
    config: args.config,
    steps: last.step,
    minutes: Math.round(last.elapsedSec / 6) / 10,
    warmStep: warm.step,
    rssWarmMiB: warm.rssMiB,
    rssEndMiB: last.rssMiB,
    rssMaxAfterWarmMiB: maxRss,
    rssGrowth: Math.round(growth * 10000) / 10000,
    msPerStepWarm: warm.msPerStep,
    msPerStepEnd: last.msPerStep,
    tensorsWarm: { main: warm.mainTensors, replicas: warm.replicaTensors },
    tensorsEnd: { main: last.mainTensors, replicas: last.replicaTensors },
    tensorsStable,
    rssFlat: growth <= kMaxRssGrowth,
    passed: growth <= kMaxRssGrowth && tensorsStable,
  };
  writeFileSync(join(args.out, 'soak.json'), `${JSON.stringify(verdict, null, 2)}\n`);
  process.stdout.write(
    `soak: ${verdict.steps} steps in ${verdict.minutes} min; RSS ${warm.rssMiB} MiB at step ${warm.step} → ${last.rssMiB} MiB at the end ` +
      `(${(growth * 100).toFixed(1)} %, max ${maxRss}); tfjs tensors ${tensorsStable ? 'stable' : 'CHANGED'} (main ${last.mainTensors}, replicas ${last.replicaTensors.join('/')}); ` +
      `${verdict.passed ? 'PASSED' : 'FAILED'}\n`,
  );
  if (!verdict.passed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: ${(err as Error).message.split('\n')[0]}\n`);
  process.exitCode = 1;
});
