// Speed of causal self-attention (src/nn/attention.ts) on one thread: GPT-2 small's shape (C = 768, 12 heads,
// B = 1) at T = 256 and 1024, forward per saved kind and backward from 'probs' and from 'lse'. Each figure
// is the best of `--rounds` rounds, a round running the phase for at least `--seconds` (the machine may be
// shared: the best round is the one least disturbed).
//
// GFLOPS count the causal products' useful arithmetic, 2·d·T(T+1)/2 per product and unit: two in the
// forward (q·kᵀ, att·v), four in the backward (dout·vᵀ, dS·k, dSᵀ·q, attᵀ·dout). The masked work inside the
// blocks, the softmax rows and (for 'lse') the recomputed q·kᵀ are not counted: they are the overhead the
// figure shows against the GEMM's own rate.
//
//   npm run bench:attention [-- --seconds 1 --rounds 3 --T 256,1024]

import { parseArgs } from 'node:util';
import { Matmul } from '../src/kernels/matmul.js';
import { resolveFlavor } from '../src/kernels/wasm-modules.js';
import { attentionBackward, attentionForward, attentionScratchBytes, type AttentionSaved } from '../src/nn/attention.js';
import { type Kernels, createKernels } from '../src/nn/kernels.js';
import { Program, runSerial } from '../src/nn/program.js';

const kC = 768;
const kHeads = 12;
const kB = 1;

interface Row {
  readonly T: number;
  readonly pass: 'forward' | 'backward';
  readonly kind: AttentionSaved['kind'];
  readonly ms: number;
  readonly gflops: number;
}

/** One arena holding everything for context T, with a scratch for the largest need. */
function arena(T: number): { k: Kernels; qkv: number; out: number; att: number; lse: number; dout: number; dqkv: number } {
  const flavor = resolveFlavor('auto');
  const gemm = Math.ceil(new Matmul(new WebAssembly.Memory({ initial: 1 }), flavor).maxScratchBytes / 16) * 16;
  const scratchBytes = gemm + attentionScratchBytes(T, kC, kHeads, 'lse', 'backward');
  const floats = [kB * T * 3 * kC, kB * T * kC, kB * kHeads * T * T, kB * kHeads * T, kB * T * kC, kB * T * 3 * kC];
  const bytes = floats.reduce((a, n) => a + 4 * n + 64, 0) + scratchBytes + 64;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) + 1 });
  const f32 = new Float32Array(memory.buffer);
  let at = 64;
  const [qkv, out, att, lse, dout, dqkv, scratch] = [...floats, 0].map((n) => {
    const p = at;
    at = (at + 4 * n + 63) & ~63;
    return p;
  });
  // Inputs on the scale of a trained GPT-2's (scores of a few units, so the softmax is neither flat nor one-hot).
  for (let i = 0; i < kB * T * 3 * kC; i++) f32[qkv / 4 + i] = Math.sin(i * 0.7) * 0.8;
  for (let i = 0; i < kB * T * kC; i++) f32[dout / 4 + i] = Math.cos(i * 0.3) * 1e-3;
  const k: Kernels = createKernels(memory, flavor, () => scratch, scratchBytes);
  return { k, qkv, out, att, lse, dout, dqkv };
}

/** Best milliseconds per run of `program` on this thread. */
function time(program: Program, seconds: number, rounds: number): number {
  runSerial(program, 1);
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    let runs = 0;
    do {
      runSerial(program, 1);
      runs++;
    } while (performance.now() - t0 < seconds * 1000);
    best = Math.min(best, (performance.now() - t0) / runs);
  }
  return best;
}

function benchAttention(Ts: readonly number[], seconds: number, rounds: number): Row[] {
  const rows: Row[] = [];
  for (const T of Ts) {
    const a = arena(T);
    const saved = (kind: AttentionSaved['kind']): AttentionSaved => (kind === 'probs' ? { kind, att: a.att } : kind === 'lse' ? { kind, lse: a.lse } : { kind });
    const product = 2 * (kC / kHeads) * ((T * (T + 1)) / 2) * kB * kHeads; // flops of one causal product over all units
    for (const kind of ['probs', 'lse', 'none'] as const) {
      const p = new Program();
      attentionForward(p, a.k, a.out, saved(kind), a.qkv, kB, T, kC, kHeads);
      const ms = time(p, seconds, rounds);
      rows.push({ T, pass: 'forward', kind, ms, gflops: (2 * product) / (ms * 1e6) });
    }
    for (const kind of ['probs', 'lse'] as const) {
      const f = new Program();
      attentionForward(f, a.k, a.out, saved(kind), a.qkv, kB, T, kC, kHeads);
      runSerial(f, 1);
      const p = new Program();
      attentionBackward(p, a.k, a.dqkv, a.dout, a.qkv, saved(kind), kB, T, kC, kHeads);
      const ms = time(p, seconds, rounds);
      rows.push({ T, pass: 'backward', kind, ms, gflops: (4 * product) / (ms * 1e6) });
    }
  }
  return rows;
}

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' }, T: { type: 'string', default: '256,1024' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const Ts = values.T.split(',').map(Number);
if (!(seconds > 0)) throw new RangeError(`--seconds must be a positive number, got ${values.seconds}`);
if (!(Number.isInteger(rounds) && rounds > 0)) throw new RangeError(`--rounds must be a positive integer, got ${values.rounds}`);
if (!Ts.every((T) => Number.isInteger(T) && T > 0)) throw new RangeError(`--T must be positive integers separated by commas, got ${values.T}`);
console.log(`causal self-attention, 1 thread, B ${kB}, C ${kC}, ${kHeads} heads (${resolveFlavor('auto')} GEMM); best of ${rounds} × ${seconds} s`);
console.log('    T  pass      saved      ms/call  GFLOPS (useful causal products)');
for (const r of benchAttention(Ts, seconds, rounds)) {
  console.log(`${String(r.T).padStart(5)}  ${r.pass.padEnd(8)}  ${r.kind.padEnd(6)}  ${r.ms.toFixed(2).padStart(10)}  ${r.gflops.toFixed(1).padStart(6)}`);
}
