// node dist/scripts/bench-nn.js [--seconds 0.3]
// One thread, each layer of src/nn/ at a GPT-2-small shape (B·T = 256 rows, C = 768, MLP 4C = 3072,
// V = 50257), through its Program (runSerial, one member): the best of as many runs as fit in `seconds`,
// as GFLOPS for the GEMM layers and as GB/s of the bytes each kernel must move (and Gelem/s) for the others.
// The machine may be shared: numbers are noisy.

import { Matmul } from '../src/kernels/matmul.js';
import { resolveFlavor } from '../src/kernels/wasm-modules.js';
import { geluBackward, geluForward, tanhBackward, tanhForward } from '../src/nn/activations.js';
import { crossEntropyForward, crossEntropyForwardBackward } from '../src/nn/cross-entropy.js';
import { encoderBackward, encoderForward } from '../src/nn/embedding.js';
import { type Kernels, createKernels } from '../src/nn/kernels.js';
import { layerNormBackward, layerNormForward } from '../src/nn/layer-norm.js';
import { linearBackward, linearForward } from '../src/nn/linear.js';
import { Program, runSerial, type Ptr } from '../src/nn/program.js';
import { addInto, residualForward } from '../src/nn/residual.js';

const rows = 256;
const T = 256;
const C = 768;
const H = 4 * C;
const V = 50257;

function parseSeconds(argv: string[]): number {
  if (argv.length === 0) return 0.3;
  const value = Number(argv[1]);
  if (argv[0] !== '--seconds' || argv.length !== 2 || !(value > 0)) throw new Error(`bench-nn: usage: bench-nn [--seconds S] (S > 0), got ${argv.join(' ')}`);
  return value;
}

/** A bump allocator over one shared memory, with the Kernels of one thread over it. */
function arena(floats: number): { k: Kernels; alloc: (n: number, fill?: (i: number) => number) => Ptr; f32: Float32Array; i32: Int32Array } {
  const flavor = resolveFlavor('auto');
  const scratchBytes = new Matmul(new WebAssembly.Memory({ initial: 1 }), flavor).maxScratchBytes;
  const pages = Math.ceil((4 * floats + scratchBytes + 65536) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const f32 = new Float32Array(memory.buffer);
  const i32 = new Int32Array(memory.buffer);
  let at = (scratchBytes + 63) & ~63;
  const k: Kernels = createKernels(memory, flavor, () => 0, scratchBytes);
  const alloc = (n: number, fill?: (i: number) => number): Ptr => {
    const p = at;
    at = (at + 4 * n + 63) & ~63;
    if (fill) for (let i = 0; i < n; i++) f32[p / 4 + i] = fill(i);
    return p;
  };
  return { k, alloc, f32, i32 };
}

/** Best seconds per run of `program` (after one warm-up run), runs until `seconds` have passed (at least 3). */
function best(program: Program, seconds: number, before?: () => void): number {
  runSerial(program);
  let bestTime = Infinity;
  const until = performance.now() + seconds * 1000;
  for (let n = 0; n < 3 || performance.now() < until; n++) {
    before?.();
    const t0 = performance.now();
    runSerial(program);
    bestTime = Math.min(bestTime, (performance.now() - t0) / 1000);
  }
  return bestTime;
}

function main(): void {
  const seconds = parseSeconds(process.argv.slice(2));
  let s = 12345;
  const rand = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const a = arena(3 * V * C + rows * V + 16 * rows * H + 4 * C * H);
  const { k, alloc } = a;
  const x = alloc(rows * C, rand);
  const y = alloc(rows * C, rand);
  const out = alloc(rows * C);
  const gamma = alloc(C, () => 1 + 0.1 * rand());
  const beta = alloc(C, rand);
  const mean = alloc(rows);
  const rstd = alloc(rows);
  const dgamma = alloc(C);
  const dbeta = alloc(C);
  const w = alloc(C * H, () => 0.03 * rand());
  const bias = alloc(H, rand);
  const h = alloc(rows * H, () => 3 * rand());
  const hout = alloc(rows * H);
  const dh = alloc(rows * H, rand);
  const dx = alloc(rows * C);
  const dw = alloc(C * H);
  const db = alloc(H);
  const wte = alloc(V * C, () => 0.02 * rand());
  const wpe = alloc(T * C, rand);
  const dwte = alloc(V * C);
  const dwpe = alloc(T * C);
  const tokens = alloc(rows);
  for (let r = 0; r < rows; r++) a.i32[tokens / 4 + r] = Math.floor(((rand() + 1) / 2) * V) % V;
  const logits = alloc(rows * V, () => 4 * rand());
  const saved = a.f32.slice(logits / 4, logits / 4 + rows * V);
  const losses = alloc(rows);

  const table: { name: string; shape: string; time: number; rate: string }[] = [];
  const gemm = (name: string, shape: string, flops: number, build: (p: Program) => void) => {
    const p = new Program();
    build(p);
    const t = best(p, seconds);
    table.push({ name, shape, time: t, rate: `${(flops / t / 1e9).toFixed(1)} GFLOPS` });
  };
  const stream = (name: string, shape: string, elements: number, bytes: number, build: (p: Program) => void, before?: () => void) => {
    const p = new Program();
    build(p);
    const t = best(p, seconds, before);
    table.push({ name, shape, time: t, rate: `${(bytes / t / 1e9).toFixed(1)} GB/s, ${(elements / t / 1e9).toFixed(2)} Gelem/s` });
  };

  const mlp = `${rows}×${C} → ${H}`;
  gemm('linear forward (+ bias)', mlp, 2 * rows * C * H, (p) => linearForward(p, k, hout, x, w, bias, rows, C, H));
  gemm('linear backward (dinp, dW, dbias)', mlp, 4 * rows * C * H, (p) => linearBackward(p, k, dx, dw, db, dh, x, w, rows, C, H));
  const n = rows * H;
  stream('gelu forward', `${n}`, n, 8 * n, (p) => geluForward(p, k, hout, h, n));
  stream('gelu backward', `${n}`, n, 12 * n, (p) => geluBackward(p, k, hout, h, dh, n));
  stream('tanh forward', `${n}`, n, 8 * n, (p) => tanhForward(p, k, hout, h, n));
  stream('tanh backward', `${n}`, n, 12 * n, (p) => tanhBackward(p, k, hout, h, dh, n));
  const m = rows * C;
  stream('residual out = a + b', `${m}`, m, 12 * m, (p) => residualForward(p, k, out, x, y, m));
  stream('addInto dst += src', `${m}`, m, 12 * m, (p) => addInto(p, k, out, y, m));
  stream('layerNorm forward', `${rows}×${C}`, m, 8 * m, (p) => layerNormForward(p, k, out, mean, rstd, x, gamma, beta, rows, C, 1e-5));
  // the input gradient reads dout and inp and writes dinp; the column pass reads dout and inp again
  stream('layerNorm backward', `${rows}×${C}`, m, 20 * m, (p) => layerNormBackward(p, k, dx, dgamma, dbeta, y, x, gamma, mean, rstd, rows, C, { accumulate: false }));
  stream('encoder forward', `${rows}×${C}`, m, 12 * m, (p) => encoderForward(p, k, out, tokens, wte, wpe, 1, T, C));
  stream('encoder backward, dwte +=', `${rows}×${C}, V = ${V}`, m, 20 * m, (p) => encoderBackward(p, k, dwte, dwpe, y, tokens, 1, T, C, V, { accumulateWte: true }));
  stream('encoder backward, dwte = (zeroed)', `${rows}×${C}, V = ${V}`, V * C, 4 * V * C + 20 * m, (p) => encoderBackward(p, k, dwte, dwpe, y, tokens, 1, T, C, V, { accumulateWte: false }));
  const e = rows * V;
  stream('crossEntropy forward', `${rows}×${V}`, e, 8 * e, (p) => crossEntropyForward(p, k, losses, logits, tokens, rows, V));
  // reads the row three times and writes it twice (exp in place, then the scaling); the logits are restored before each run
  stream('crossEntropy forward+backward', `${rows}×${V}`, e, 20 * e, (p) => crossEntropyForwardBackward(p, k, losses, logits, tokens, rows, V, 1 / rows), () => a.f32.set(saved, logits / 4));

  console.log(`bench-nn: one thread, best of ≥ 3 runs within ${seconds} s each (the machine may be shared)`);
  const width = Math.max(...table.map((r) => r.name.length));
  const shapeWidth = Math.max(...table.map((r) => r.shape.length));
  for (const r of table) console.log(`${r.name.padEnd(width)}  ${r.shape.padEnd(shapeWidth)}  ${(r.time * 1e3).toFixed(3).padStart(8)} ms  ${r.rate}`);
}

main();
