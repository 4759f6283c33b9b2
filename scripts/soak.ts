// npm run soak [-- --config config/char-lm.json --steps 30000 --minutes 30 --every 100 --out runs/soak]
// A long run of the default model that watches for leaks: every `every` steps it records RSS, the JS heap,
// the mean step time since the last record, and tfjs's live tensors on the main thread and in every replica
// thread. Evaluations and checkpoints run on the way (every 1000 steps) so their paths are soaked too.
// It stops at --steps or --minutes, whichever comes first (30,000 steps by default, ~8 min on 2 cores: in a
// 10,000-step run the main thread's V8 heap was still growing its reserve, 33 → 68 MiB, until ~step 10,000,
// and RSS with it; past that RSS was flat), and then checks, after warm-up (the first 20 % of
// the steps, at least 1000): RSS grows by at most 5 %, and the tensor counts never change. The replicas' JS
// heaps saw-tooth (garbage from every step, collected in bursts), so RSS is compared peak to peak: the
// highest RSS in the last 20 % of the run against the highest in the 20 % right after warm-up; a leak
// raises every peak, a collection that happens to fall just before one sample does not decide the verdict.
// Writes soak.jsonl (one record per line) and soak.json (the verdict) into --out; exits 1 on a failed check.

import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { Trainer } from '../src/index.js';
import { loadConfigFile } from '../src/api/train.js';
import { tf } from '../src/tfjs/tf.js';

interface SoakRecord {
  readonly step: number;
  readonly elapsedSec: number;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  /** The main isolate's heap reserved, and memory outside it (Buffers, ArrayBuffers, native). */
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
  readonly msPerStep: number;
  readonly loss: number;
  readonly mainTensors: number;
  /** Live tfjs tensors per replica thread, in thread-id order. */
  readonly replicaTensors: number[];
  /** Per replica thread: V8 heap in use and the tfjs wasm backend's heap, MiB. */
  readonly replicaHeapMiB: number[];
  readonly replicaWasmMiB: number[];
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
    .option('-s, --steps <n>', 'optimizer steps', positive('--steps'), 30000)
    .option('-m, --minutes <n>', 'stop after this many minutes at the latest', positive('--minutes'), 30)
    .option('-e, --every <n>', 'steps between records', positive('--every'), 100)
    .option('-t, --threads <n>', 'pool threads (default: all cores)', positive('--threads'))
    .option('-o, --out <dir>', 'where soak.jsonl and soak.json go', 'runs/soak')
    .parse(process.argv);
  return program.opts();
}

async function replicaMemory(trainer: Trainer): Promise<Pick<SoakRecord, 'replicaTensors' | 'replicaHeapMiB' | 'replicaWasmMiB'>> {
  const infos = await trainer.replicaInfo();
  if (new Set(infos.map((i) => i.threadId)).size !== trainer.threads) throw new Error(`replicaInfo reached threads ${infos.map((i) => i.threadId)}, expected ${trainer.threads} distinct`);
  return { replicaTensors: infos.map((i) => i.numTensors), replicaHeapMiB: infos.map((i) => mib(i.heapUsedBytes)), replicaWasmMiB: infos.map((i) => mib(i.wasmHeapBytes)) };
}

/** Records in [from, to) of the run's steps, as fractions; at least the record nearest `from`. */
function window(records: readonly SoakRecord[], from: number, to: number): SoakRecord[] {
  const last = records[records.length - 1].step;
  const inside = records.filter((r) => r.step >= from * last && r.step <= to * last);
  return inside.length > 0 ? inside : [records.find((r) => r.step >= from * last) ?? records[records.length - 1]];
}

const peakRss = (records: readonly SoakRecord[]): number => Math.max(...records.map((r) => r.rssMiB));

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
        heapTotalMiB: mib(mem.heapTotal),
        externalMiB: mib(mem.external),
        msPerStep: steps > 0 ? Math.round(((now - windowStart) / steps) * 100) / 100 : 0,
        loss,
        mainTensors: tf.memory().numTensors,
        ...(await replicaMemory(trainer)),
      };
      records.push(r);
      appendFileSync(log, `${JSON.stringify(r)}\n`);
      process.stdout.write(`step ${r.step}  rss ${r.rssMiB} MiB  heap ${r.heapUsedMiB}/${r.heapTotalMiB} MiB  external ${r.externalMiB} MiB  ${r.msPerStep} ms/step  loss ${loss.toFixed(4)}  tensors main ${r.mainTensors}, replicas ${r.replicaTensors.join('/')}  replica heap ${r.replicaHeapMiB.join('/')} MiB, wasm ${r.replicaWasmMiB.join('/')} MiB\n`);
      windowStart = performance.now();
    };
    await record();
    while (trainer.globalStep < args.steps && performance.now() < deadline) {
      loss = (await trainer.step()).loss;
      const step = trainer.globalStep;
      if (step % kCheckEvery === 0) {
        await trainer.evaluate();
        await trainer.saveCheckpoint(join(args.out, 'soak.safetensors'));
        await trainer.sample(2);
      }
      if (step % args.every === 0) await record();
    }
    if (records[records.length - 1].step !== trainer.globalStep) await record();
  } finally {
    await trainer.close();
  }

  const last = records[records.length - 1];
  const warmFraction = Math.max(0.2, Math.min(0.6, 1000 / Math.max(1, last.step)));
  const early = window(records, warmFraction, warmFraction + 0.2);
  const late = window(records, 0.8, 1);
  const warm = early[0];
  const maxRss = peakRss(records.slice(records.indexOf(warm)));
  const growth = (peakRss(late) - peakRss(early)) / peakRss(early);
  const tensorsOf = (r: SoakRecord) => JSON.stringify([r.mainTensors, r.replicaTensors]);
  const tensorsStable = records.slice(records.indexOf(warm)).every((r) => tensorsOf(r) === tensorsOf(warm));
  const verdict = {
    config: args.config,
    steps: last.step,
    minutes: Math.round(last.elapsedSec / 6) / 10,
    warmStep: warm.step,
    rssWarmMiB: warm.rssMiB,
    rssPeakEarlyMiB: peakRss(early),
    rssPeakLateMiB: peakRss(late),
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
    `soak: ${verdict.steps} steps in ${verdict.minutes} min; RSS ${warm.rssMiB} MiB at step ${warm.step} → ${last.rssMiB} MiB at the end; ` +
      `peak ${peakRss(early)} MiB (steps ${early[0].step}–${early[early.length - 1].step}) → ${peakRss(late)} MiB (steps ${late[0].step}–${last.step}): ${(growth * 100).toFixed(1)} %; tfjs tensors ${tensorsStable ? 'stable' : 'CHANGED'} (main ${last.mainTensors}, replicas ${last.replicaTensors.join('/')}); ` +
      `${verdict.passed ? 'PASSED' : 'FAILED'}\n`,
  );
  if (!verdict.passed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: ${(err as Error).message.split('\n')[0]}\n`);
  process.exitCode = 1;
});
