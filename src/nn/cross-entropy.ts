// Softmax cross-entropy per row: losses[r] = −log softmax(logits[r])[targets[r]] = log Σ exp(x − m) + m −
// x[target] (m the row's max; the log in float64), targets i32 in [0, V) (checked: a target outside throws,
// nothing written). The backward is fused: the GPT-2 vocabulary makes logits the largest activation, so
// dlogits = (softmax − onehot(target))·scale overwrites them in place rather than being stored twice.
//
// Split: by rows (each row's max and sum are one member's, in an order fixed by V). One phase. Scratch: none.

import { checkBuffers, checkFinite, checkSizes } from './checks.js';
import type { Kernels } from './kernels.js';
import { memberSlice, type Program, type Ptr } from './program.js';

function pushCrossEntropy(p: Program, k: Kernels, layer: string, losses: Ptr, logits: Ptr, targets: Ptr, rows: number, V: number, scale: number, backward: boolean): void {
  checkSizes(layer, { rows, V });
  checkBuffers(layer, k, { losses: [losses, rows], logits: [logits, rows * V], targets: [targets, rows] });
  p.push(backward ? 'forward and backward' : 'forward', (member, members) => {
    const [r0, r1] = memberSlice(rows, member, members);
    k.ops.crossEntropy(losses, logits, targets, r0, r1, V, scale, backward);
  });
}

/** losses [rows] (f32) of logits [rows, V] and targets [rows]; logits untouched. */
export function crossEntropyForward(p: Program, k: Kernels, losses: Ptr, logits: Ptr, targets: Ptr, rows: number, V: number): void {
  pushCrossEntropy(p, k, 'crossEntropyForward', losses, logits, targets, rows, V, 1, false);
}

/** The same losses, then logits overwritten by dlogits = (softmax − onehot(target))·scale (scale = 1/(rows the mean is over)). */
export function crossEntropyForwardBackward(p: Program, k: Kernels, losses: Ptr, logits: Ptr, targets: Ptr, rows: number, V: number, scale: number): void {
  checkFinite('crossEntropyForwardBackward', 'scale', scale);
  pushCrossEntropy(p, k, 'crossEntropyForwardBackward', losses, logits, targets, rows, V, scale, true);
}
