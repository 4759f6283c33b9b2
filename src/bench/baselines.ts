// What `shardtrain bench` compares the optimizer's step with, all measured in the same run: a native C AdamW
// with OpenMP (scripts/native/adamw.c, compiled here with the machine's cc), a single-thread plain JS loop,
// tfjs `train.adam` on its wasm backend, and a memory-bandwidth probe (a large Float32Array copy).

import { createPool } from '../parallel/pool.js';
import { parallelFor } from '../parallel/parallel-for.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

/** Median seconds of `reps` calls after `warmup` untimed ones. */
export function timeSync(fn: () => void, reps: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t.push((performance.now() - t0) / 1e3);
  }
  return median(t);
}

// ---- native ----

const kNativeSource = fileURLToPath(new URL('../../../scripts/native/adamw.c', import.meta.url));
export const kNativeFlags = ['-O3', '-march=native', '-fno-math-errno', '-fopenmp'];

export interface NativeBaseline {
  /** Path of the compiled binary, or null with the reason in `note`. */
  readonly binary: string | null;
  readonly note: string;
  /** The widest packed sqrt in the generated code ('zmm', 'ymm', 'xmm') or 'scalar'. */
  readonly vectorWidth: string;
  cleanup(): void;
}

/** Compile adamw.c into a temp dir and look at the assembly to confirm sqrtf was vectorised. */
export function buildNative(cc = process.env.CC ?? 'cc'): NativeBaseline {
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-bench-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const binary = join(dir, 'adamw');
  const build = spawnSync(cc, [...kNativeFlags, kNativeSource, '-o', binary, '-lm'], { encoding: 'utf8' });
  if (build.error || build.status !== 0) {
    cleanup();
    const why = build.error ? build.error.message : build.stderr.trim().split('\n')[0];
    return { binary: null, note: `native baseline skipped: \`${cc} ${kNativeFlags.join(' ')}\` failed (${why})`, vectorWidth: '-', cleanup: () => {} };
  }
  const asm = spawnSync(cc, [...kNativeFlags, '-S', '-o', '-', kNativeSource], { encoding: 'utf8', maxBuffer: 1 << 26 }).stdout ?? '';
  const widths = ['zmm', 'ymm', 'xmm'].filter((r) => new RegExp(`sqrtps[^\\n]*%${r}`).test(asm));
  const vectorWidth = widths[0] ?? 'scalar';
  const note =
    vectorWidth === 'scalar'
      ? `native baseline: WARNING sqrtf was not vectorised (no sqrtps in the assembly); the baseline is too slow`
      : `native baseline: ${cc} ${kNativeFlags.join(' ')}; sqrtps on ${vectorWidth} registers (vectorised)`;
  return { binary, note, vectorWidth, cleanup };
}

/** Median and best (fastest) seconds per step of the native AdamW at n params and `threads` OpenMP threads. */
export function runNative(nb: NativeBaseline, n: number, threads: number, steps: number): { median: number; best: number } | null {
  if (nb.binary === null) return null;
  const r = spawnSync(nb.binary, [String(n), String(steps), String(threads)], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: String(threads), OMP_PROC_BIND: 'false' },
  });
  if (r.status !== 0) return null;
  const [median, best] = r.stdout.trim().split(/\s+/).map(Number);
  return Number.isFinite(median) && Number.isFinite(best) ? { median, best } : null;
}

// ---- plain JS loop ----

/**
 * One AdamW step (pytorch convention, the per-element formula of adamw.c) over plain Float32Arrays on one
 * thread: what a user would write without shardtrain. Arrays are passed per shard.
 */
export function plainAdamwStep(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, n: number, t: number): void {
  const b1 = 0.9;
  const b2 = 0.999;
  const lr = 1e-3;
  const decay = 1 - lr * 0.01;
  const stepSize = lr / (1 - b1 ** t);
  const sqrtScale = 1 / Math.sqrt(1 - b2 ** t);
  const eps = 1e-8;
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = b1 * m[i] + (1 - b1) * gi;
    const vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) * sqrtScale + eps);
  }
}

// ---- tfjs ----

/**
 * Median seconds per step of tfjs `train.adam` on the wasm backend, decoupled decay written by hand
 * (w ← w·(1 − lr·λ), then Adam), at n params. Slow: allocates temporaries per op.
 */
export async function runTfjsAdam(n: number, steps: number): Promise<{ seconds: number; backend: string } | { error: string }> {
  try {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) return { error: 'the tfjs wasm backend did not start' };
    await tf.ready();
    const lr = 1e-3;
    const w = tf.variable(tf.fill([n], 0.5), true, 'w');
    const g = tf.fill([n], 0.01);
    const adam = tf.train.adam(lr, 0.9, 0.999, 1e-8);
    const step = () => {
      tf.tidy(() => {
        w.assign(tf.mul(w, 1 - lr * 0.01));
      });
      // gradients by variable name (tfjs's types ask for Variables here; the runtime takes any tensor)
      adam.applyGradients({ w: g } as unknown as Parameters<typeof adam.applyGradients>[0]);
    };
    const seconds = timeSync(step, steps, 2);
    adam.dispose();
    w.dispose();
    g.dispose();
    return { seconds, backend: tf.getBackend() };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

// ---- memory bandwidth ----

/** GB/s of a large Float32Array copy (bytes read + bytes written), median of a few. */
/**
 * Memory bandwidth as a large copy sees it (read + write bytes per second), with `threads` threads copying
 * disjoint halves at once on a pool (one thread alone does not saturate this machine's memory). Best of 3.
 */
export async function memcpyBandwidth(threads: number, floats = 1 << 27): Promise<number> {
  const src = new SharedArrayBuffer(floats * 4);
  const dst = new SharedArrayBuffer(floats * 4);
  new Float32Array(src).fill(1);
  new Float32Array(dst).fill(2);
  const pool = createPool({ threads });
  try {
    const module = new URL('./copy-body.js', import.meta.url);
    const run = async (reps: number) => Math.max(...(await parallelFor<number>({ module, range: floats, buffers: { src, dst }, args: { reps }, pool })));
    await run(1);
    let best = Number.POSITIVE_INFINITY;
    for (let k = 0; k < 3; k++) best = Math.min(best, await run(3));
    return (3 * 2 * floats * 4) / best / 1e9;
  } finally {
    await pool.close();
  }
}
