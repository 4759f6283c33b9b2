// LayerNorm over the last axis, as torch (biased variance): out = (x − μ)·rstd·γ + β, rstd = 1/√(σ² + ε), with
// each row's μ and rstd saved for the backward (llm.c layernorm_forward/backward).
//
// Split: the forward and the input gradient by rows (a row is one member's: its sums are its own); dγ and dβ,
// sums over rows, by columns (member j sums its columns over all rows in row order, on whole cache lines), so
// every element is one sum in one order for any team. The backward is one phase: both halves read only dout,
// inp, γ, μ, rstd, so dinp must not be dout (the column sums read every row of dout while the rows are
// written). Scratch: none.

import { checkBuffers, checkFinite, checkSizes, kLineFloats } from './checks.js';
import type { Kernels } from './kernels.js';
import { memberSlice, type Program, type Ptr } from './program.js';

/** out [rows, C]; mean, rstd [rows]; inp [rows, C]; gamma, beta [C]. */
export function layerNormForward(p: Program, k: Kernels, out: Ptr, mean: Ptr, rstd: Ptr, inp: Ptr, gamma: Ptr, beta: Ptr, rows: number, C: number, eps: number): void {
  checkSizes('layerNormForward', { rows, C });
  checkFinite('layerNormForward', 'eps', eps);
  if (eps < 0) throw new RangeError(`layerNormForward: eps must be ≥ 0, got ${eps}`);
  checkBuffers('layerNormForward', k, { out: [out, rows * C], mean: [mean, rows], rstd: [rstd, rows], inp: [inp, rows * C], gamma: [gamma, C], beta: [beta, C] });
  p.push('forward', (member, members) => {
    const [r0, r1] = memberSlice(rows, member, members);
    k.ops.layerNormForward(out, mean, rstd, inp, gamma, beta, r0, r1, C, eps);
  });
}

/** dinp [rows, C] = or += (accumulate: the residual stream's gradient); dgamma, dbeta [C] written. */
export function layerNormBackward(
  p: Program, k: Kernels, dinp: Ptr, dgamma: Ptr, dbeta: Ptr, dout: Ptr, inp: Ptr, gamma: Ptr, mean: Ptr, rstd: Ptr, rows: number, C: number, opts: { accumulate: boolean },
): void {
  checkSizes('layerNormBackward', { rows, C });
  checkBuffers('layerNormBackward', k, {
    dinp: [dinp, rows * C], dgamma: [dgamma, C], dbeta: [dbeta, C], dout: [dout, rows * C], inp: [inp, rows * C], gamma: [gamma, C], mean: [mean, rows], rstd: [rstd, rows],
  });
  const accumulate = opts.accumulate;
  p.push('backward', (member, members) => {
    const [r0, r1] = memberSlice(rows, member, members);
    k.ops.layerNormBackward(dinp, dout, inp, gamma, mean, rstd, r0, r1, C, accumulate);
    const [c0, c1] = memberSlice(C, member, members, kLineFloats);
    k.ops.layerNormParamGrads(dgamma, dbeta, dout, inp, mean, rstd, rows, C, c0, c1);
  });
}
