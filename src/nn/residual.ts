// The residual stream: out = a + b (forward), dst += src (a gradient reaching a tensor by a second path).
// Split: by elements (elementwise.ts). Scratch: none. Exact: one float32 addition per element.

import type { Kernels } from './kernels.js';
import type { Program, Ptr } from './program.js';
import { pushElementwise } from './elementwise.js';

/** out = a + b, n elements (out may be a or b). */
export function residualForward(p: Program, k: Kernels, out: Ptr, a: Ptr, b: Ptr, n: number): void {
  pushElementwise(p, k, 'residualForward', 'forward', (ops, o, x, y, m) => ops.add(o, x, y, m), n, out, a, b, ['out', 'a', 'b']);
}

/** dst += src, n elements. */
export function addInto(p: Program, k: Kernels, dst: Ptr, src: Ptr, n: number): void {
  pushElementwise(p, k, 'addInto', 'add', (ops, o, x, y, m) => ops.add(o, x, y, m), n, dst, dst, src, ['dst', 'dst', 'src']);
}
