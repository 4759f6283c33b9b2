// Elementwise activations: GELU with the tanh approximation (GPT-2's; torch GELU(approximate='tanh')) and
// tanh, forward and backward. Split: by elements (elementwise.ts). Scratch: none. Error bounds:
// kernels/wasm/nn.wat.mjs (GELU and both backwards), kernels/wasm/map.wat.mjs (tanh, 3 ulps).

import type { Kernels } from './kernels.js';
import type { Program, Ptr } from './program.js';
import { pushElementwise } from './elementwise.js';

/** out = GELU(inp), n elements (out may be inp). */
export function geluForward(p: Program, k: Kernels, out: Ptr, inp: Ptr, n: number): void {
  pushElementwise(p, k, 'geluForward', 'forward', (ops, o, x, _, m) => ops.gelu(o, x, m), n, out, inp, null, ['out', 'inp']);
}

/** dinp = dout·GELU′(inp), written (dinp may be dout). */
export function geluBackward(p: Program, k: Kernels, dinp: Ptr, inp: Ptr, dout: Ptr, n: number): void {
  pushElementwise(p, k, 'geluBackward', 'backward', (ops, dx, x, dy, m) => ops.geluBackward(dx, x, dy, m), n, dinp, inp, dout, ['dinp', 'inp', 'dout']);
}

/** out = tanh(inp), n elements (out may be inp). */
export function tanhForward(p: Program, k: Kernels, out: Ptr, inp: Ptr, n: number): void {
  pushElementwise(p, k, 'tanhForward', 'forward', (ops, o, x, _, m) => ops.tanh(o, x, m), n, out, inp, null, ['out', 'inp']);
}

/** dinp = dout·(1 − out²) from the saved output, written (dinp may be dout). */
export function tanhBackward(p: Program, k: Kernels, dinp: Ptr, out: Ptr, dout: Ptr, n: number): void {
  pushElementwise(p, k, 'tanhBackward', 'backward', (ops, dx, y, dy, m) => ops.tanhBackward(dx, y, dy, m), n, dinp, out, dout, ['dinp', 'out', 'dout']);
}
