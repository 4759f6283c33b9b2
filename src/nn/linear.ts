// A linear layer, out = inp·W + bias, on the GEMM (kernels/matmul.ts). W is [cin, cout] row-major (Keras'
// layout, our tensors), or [cout, cin] with transposeWeight (the tied GPT head: logits = x·wteᵀ, wte [V, C]):
// the GEMM reads either through its strides, so neither is ever transposed in memory.
//
// Split: each product is cut by Matmul.runPart (a member's rows of the result, or its columns when there are
// more columns than rows), which gives the same bits for any split; the bias gradient, a sum over rows, is cut
// by columns (member j sums its columns over all rows in row order). The backward is one phase: dinp, dW and
// dbias read only dout, inp and W, and each member writes its own part of each (so no gradient may alias them).
// Scratch: the GEMM's packing buffers, linearScratchBytes() per member.

import type { Matmul, MatmulCall } from '../kernels/matmul.js';
import { checkBuffers, checkSizes, kLineFloats } from './checks.js';
import type { Kernels } from './kernels.js';
import { memberSlice, type Program, type Ptr } from './program.js';

/** Per-member scratch bytes the linear layers need (the GEMM's, whatever the sizes). */
export function linearScratchBytes(matmul: Matmul): number {
  return matmul.maxScratchBytes;
}

/** out [rows, cout] = inp [rows, cin]·W (+ bias [cout]). */
export function linearForward(p: Program, k: Kernels, out: Ptr, inp: Ptr, weight: Ptr, bias: Ptr | null, rows: number, cin: number, cout: number, opts: { transposeWeight?: boolean } = {}): void {
  checkSizes('linearForward', { rows, cin, cout });
  checkBuffers('linearForward', k, { out: [out, rows * cout], inp: [inp, rows * cin], weight: [weight, cin * cout], bias: [bias, cout] });
  const t = opts.transposeWeight === true;
  const call: MatmulCall = {
    m: rows, n: cout, k: cin,
    a: inp, rsA: cin, csA: 1,
    b: weight, rsB: t ? 1 : cout, csB: t ? cin : 1,
    c: out, ldc: cout, bias: bias ?? undefined,
  };
  p.push('forward', (member, members) => k.matmul.runPart(call, member, members, k.scratch(member)));
}

/**
 * dinp [rows, cin] = dout·Wᵀ (+= with accumulateInput; skipped when dinp is null); dW = inpᵀ·dout in W's
 * layout and dbias [cout] = Σ over rows of dout (skipped when null): written, or both added to with
 * accumulateWeight (a parameter used twice).
 */
export function linearBackward(
  p: Program, k: Kernels, dinp: Ptr | null, dweight: Ptr, dbias: Ptr | null, dout: Ptr, inp: Ptr, weight: Ptr, rows: number, cin: number, cout: number,
  opts: { transposeWeight?: boolean; accumulateInput?: boolean; accumulateWeight?: boolean } = {},
): void {
  checkSizes('linearBackward', { rows, cin, cout });
  checkBuffers('linearBackward', k, {
    dinp: [dinp, rows * cin], dweight: [dweight, cin * cout], dbias: [dbias, cout], dout: [dout, rows * cout], inp: [inp, rows * cin], weight: [weight, cin * cout],
  });
  const t = opts.transposeWeight === true;
  const accumulateWeight = opts.accumulateWeight === true;
  // dinp(r, i) = Σ_o dout(r, o)·W(i, o): B(o, i) is W[i, o] ([cin, cout]) or W[o, i] ([cout, cin])
  const dx: MatmulCall | null = dinp === null ? null : {
    m: rows, n: cin, k: cout,
    a: dout, rsA: cout, csA: 1,
    b: weight, rsB: t ? cin : 1, csB: t ? 1 : cout,
    c: dinp, ldc: cin, accumulate: opts.accumulateInput === true,
  };
  // dW[i, o] = Σ_r inp(r, i)·dout(r, o), or dW[o, i] = Σ_r dout(r, o)·inp(r, i) for [cout, cin]
  const dw: MatmulCall = t
    ? { m: cout, n: cin, k: rows, a: dout, rsA: 1, csA: cout, b: inp, rsB: cin, csB: 1, c: dweight, ldc: cin, accumulate: accumulateWeight }
    : { m: cin, n: cout, k: rows, a: inp, rsA: 1, csA: cin, b: dout, rsB: cout, csB: 1, c: dweight, ldc: cout, accumulate: accumulateWeight };
  p.push('backward', (member, members) => {
    const scratch = k.scratch(member);
    if (dx !== null) k.matmul.runPart(dx, member, members, scratch);
    k.matmul.runPart(dw, member, members, scratch);
    if (dbias !== null) {
      const [c0, c1] = memberSlice(cout, member, members, kLineFloats);
      k.ops.columnSums(dbias, dout, rows, cout, c0, c1, accumulateWeight);
    }
  });
}
