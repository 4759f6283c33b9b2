// npm run bench:gemm: the GEMM table: GFLOPS of tf.matMul on the wasm backend per shape, our kernel and
// tfjs's own, on 1 thread and on 2 (two worker threads each running the same matMul at once, started together
// by a barrier), and PyTorch's (scripts/torch/torch_gemm.py) on the same shapes when /usr/bin/python3 has torch.
// Each worker switches between ours and tfjs's kernels before every measurement, so the two are interleaved;
// the best of `repeat` rounds is kept (the machine may be shared).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { registerWasmKernels } from '../src/tfjs/register.js';
import { initTf, tf } from '../src/tfjs/tf.js';

export interface GemmShape {
  readonly label: string;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly transposeA: boolean;
  readonly transposeB: boolean;
  /** false where one call of tfjs's own kernel takes seconds (its scalar loop on a transposed 1024³). */
  readonly tfjs: boolean;
}

export interface GemmRow {
  readonly shape: GemmShape;
  /** GFLOPS per thread, best round; null where not measured. */
  readonly ours1: number;
  readonly tfjs1: number | null;
  readonly ours2: number;
  readonly tfjs2: number | null;
  /** PyTorch's GFLOPS with 1 and 2 intra-op threads (whole GEMM, not per thread); null without torch. */
  readonly torch1: number | null;
  readonly torch2: number | null;
}

interface Job {
  readonly kind: 'gemm-bench';
  readonly shapes: readonly GemmShape[];
  readonly seconds: number;
  readonly repeat: number;
  readonly barrier: SharedArrayBuffer;
  readonly threads: number;
}

export const shapeName = (s: GemmShape): string => `${s.m}×${s.k}×${s.n}${s.transposeA || s.transposeB ? ` ${s.transposeA ? 'T' : 'N'}${s.transposeB ? 'T' : 'N'}` : ''}`;

/** The matmuls of one char-lm training step per replica: each dense layer forward (NN), dW (TN), dX (NT). */
export function stepShapes(model: string, microBatch: number, widths: readonly number[]): GemmShape[] {
  return widths.slice(1).flatMap((dout, i) => {
    const din = widths[i];
    const layer = `${model} layer ${i + 1}`;
    return [
      { label: `${layer} forward`, m: microBatch, k: din, n: dout, transposeA: false, transposeB: false, tfjs: true },
      { label: `${layer} dW = Xᵀ·dY`, m: din, k: microBatch, n: dout, transposeA: true, transposeB: false, tfjs: true },
      { label: `${layer} dX = dY·Wᵀ`, m: microBatch, k: dout, n: din, transposeA: false, transposeB: true, tfjs: true },
    ];
  });
}

/** Wait until all `threads` have arrived (a counter and a generation on shared memory). */
function barrierWait(cells: Int32Array, threads: number): void {
  const generation = Atomics.load(cells, 1);
  if (Atomics.add(cells, 0, 1) === threads - 1) {
    Atomics.store(cells, 0, 0);
    Atomics.add(cells, 1, 1);
    Atomics.notify(cells, 1);
  } else {
    while (Atomics.load(cells, 1) === generation) Atomics.wait(cells, 1, generation, 1000);
  }
}

async function workerMain(job: Job): Promise<number[][]> {
  await initTf('wasm');
  const cells = new Int32Array(job.barrier);
  const out: number[][] = job.shapes.map(() => [0, 0]);
  const tensors = job.shapes.map((s) => ({
    a: tf.randomNormal(s.transposeA ? [s.k, s.m] : [s.m, s.k]),
    b: tf.randomNormal(s.transposeB ? [s.n, s.k] : [s.k, s.n]),
  }));
  for (let round = 0; round < job.repeat; round++) {
    job.shapes.forEach((s, i) => {
      (['ours', 'tfjs'] as const).forEach((use, u) => {
        if (use === 'tfjs' && !s.tfjs) return;
        registerWasmKernels(tf, { use });
        const call = () => tf.matMul(tensors[i].a, tensors[i].b, s.transposeA, s.transposeB).dispose();
        call();
        barrierWait(cells, job.threads);
        const t0 = performance.now();
        let calls = 0;
        do {
          call();
          calls++;
        } while (performance.now() - t0 < job.seconds * 1000);
        const gflops = (2 * s.m * s.k * s.n * calls) / ((performance.now() - t0) * 1e6);
        out[i][u] = Math.max(out[i][u], gflops);
        barrierWait(cells, job.threads);
      });
    });
  }
  registerWasmKernels(tf);
  return out;
}

if (!isMainThread && (workerData as Partial<Job> | null)?.kind === 'gemm-bench') {
  parentPort!.postMessage(await workerMain(workerData as Job));
}

/** Per thread, per shape, [ours, tfjs] GFLOPS (best round) with `threads` workers running at once. */
async function measure(shapes: readonly GemmShape[], threads: number, seconds: number, repeat: number): Promise<number[][][]> {
  const job: Job = { kind: 'gemm-bench', shapes, seconds, repeat, barrier: new SharedArrayBuffer(8), threads };
  return Promise.all(
    Array.from({ length: threads }, () => new Promise<number[][]>((resolve, reject) => {
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: job });
      worker.once('message', (m: number[][]) => void worker.terminate().then(() => resolve(m)));
      worker.once('error', reject);
    })),
  );
}

/** PyTorch's GFLOPS per shape with `threads` intra-op threads, or null without /usr/bin/python3 + torch. */
function torchGemm(shapes: readonly GemmShape[], threads: number): Map<string, number> | null {
  const script = fileURLToPath(new URL('../../scripts/torch/torch_gemm.py', import.meta.url));
  const spec = shapes.map((s) => `${s.m}x${s.k}x${s.n}${s.transposeA || s.transposeB ? `:${s.transposeA ? 'T' : 'N'}${s.transposeB ? 'T' : 'N'}` : ''}`);
  const run = spawnSync('/usr/bin/python3', [script, String(threads), [...new Set(spec)].join(',')], { encoding: 'utf8' });
  if (run.status !== 0) return null;
  return new Map([...run.stdout.matchAll(/^(\S+): ([\d.]+) GFLOPS$/gm)].map((m) => [m[1], Number(m[2])]));
}

export async function gemmTable(shapes: readonly GemmShape[], seconds: number, repeat: number): Promise<GemmRow[]> {
  const one = (await measure(shapes, 1, seconds, repeat))[0];
  const two = await measure(shapes, 2, seconds, repeat);
  const torch = [torchGemm(shapes, 1), torchGemm(shapes, 2)];
  const key = (s: GemmShape) => `${s.m}x${s.k}x${s.n}${s.transposeA || s.transposeB ? `:${s.transposeA ? 'T' : 'N'}${s.transposeB ? 'T' : 'N'}` : ''}`;
  return shapes.map((shape, i) => ({
    shape,
    ours1: one[i][0],
    tfjs1: shape.tfjs ? one[i][1] : null,
    ours2: (two[0][i][0] + two[1][i][0]) / 2,
    tfjs2: shape.tfjs ? (two[0][i][1] + two[1][i][1]) / 2 : null,
    torch1: torch[0]?.get(key(shape)) ?? null,
    torch2: torch[1]?.get(key(shape)) ?? null,
  }));
}

export function formatGemmTable(rows: readonly GemmRow[]): string {
  const f = (x: number | null) => (x === null ? '—' : x.toFixed(1));
  const ratio = (a: number, b: number | null) => (b === null || b === 0 ? '—' : `${(a / b).toFixed(b < 1 ? 0 : 1)}×`);
  const lines = [
    '| matmul (m×k×n, transposes) | what | ours, 1 thread | tfjs, 1 thread | ours ÷ tfjs | ours, per thread of 2 | tfjs, per thread of 2 | PyTorch 1 thread | PyTorch 2 threads (whole) | ours 2 threads ÷ PyTorch 2 |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) =>
      `| ${shapeName(r.shape)} | ${r.shape.label} | ${f(r.ours1)} | ${f(r.tfjs1)} | ${ratio(r.ours1, r.tfjs1)} | ${f(r.ours2)} | ${f(r.tfjs2)} | ${f(r.torch1)} | ${f(r.torch2)} | ${r.torch2 === null ? '—' : (2 * r.ours2 / r.torch2).toFixed(2)} |`),
  ];
  return `${lines.join('\n')}\n`;
}

// npm run bench:gemm [-- --seconds 0.3 --repeat 3]: the reference shapes (with a backward pass's transposes).
if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name: string, fallback: number) => {
    const i = argv.indexOf(`--${name}`);
    return i < 0 ? fallback : Number(argv[i + 1]);
  };
  const ref = (m: number, k: number, n: number, transposeA: boolean, transposeB: boolean, tfjs = true): GemmShape => ({ label: 'reference shape', m, k, n, transposeA, transposeB, tfjs });
  const shapes = [ref(1024, 256, 256, false, false), ref(1024, 256, 256, true, false), ref(1024, 256, 256, false, true), ref(256, 768, 3072, false, false), ref(1024, 1024, 1024, false, false), ref(1024, 1024, 1024, true, false, false)];
  process.stdout.write(formatGemmTable(await gemmTable(shapes, opt('seconds', 0.3), opt('repeat', 3))));
}
