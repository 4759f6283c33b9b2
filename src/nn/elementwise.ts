// The phase of an elementwise kernel: n elements cut by members on whole cache lines (nothing is summed, so
// any cut gives the same bits). Shared by activations.ts and residual.ts.

import type { NnOps } from '../kernels/nn-ops.js';
import { checkBuffers, checkSizes, kLineFloats } from './checks.js';
import type { Kernels } from './kernels.js';
import { memberSlice, type Program, type Ptr } from './program.js';

/** out[i] = f(a[i], b[i]) for i < n (out may be a or b; a unary f ignores b). */
export type ElementwiseOp = (ops: NnOps, out: Ptr, a: Ptr, b: Ptr, n: number) => void;

/** Push one phase `what` of `op` over n elements; `names` name out, a and b in errors (b null: unary). */
export function pushElementwise(p: Program, k: Kernels, layer: string, what: string, op: ElementwiseOp, n: number, out: Ptr, a: Ptr, b: Ptr | null, names: readonly string[]): void {
  checkSizes(layer, { n });
  checkBuffers(layer, k, { [names[0]]: [out, n], [names[1]]: [a, n], ...(b === null ? {} : { [names[2]]: [b, n] }) });
  const bb = b ?? a;
  p.push(what, (member, members) => {
    const [i0, i1] = memberSlice(n, member, members, kLineFloats);
    if (i1 > i0) op(k.ops, out + 4 * i0, a + 4 * i0, bb + 4 * i0, i1 - i0);
  });
}
