// A GPT without attention, built from every nn layer (for test/nn-team.test.ts): encoder → LayerNorm → MLP
// (linear, GELU, linear) → residual → final LayerNorm → tied head (x·wteᵀ) → fused cross-entropy, and back up:
// the head writes dwte, the encoder's scatter adds to it; GELU′ in place; the first LayerNorm's input gradient
// added onto the residual stream's. The layout is a pure function of the sizes, so every thread that builds
// the program over the same memory addresses the same bytes.

import { geluBackward, geluForward } from '../src/nn/activations.js';
import { crossEntropyForwardBackward } from '../src/nn/cross-entropy.js';
import { encoderBackward, encoderForward } from '../src/nn/embedding.js';
import type { Kernels } from '../src/nn/kernels.js';
import { layerNormBackward, layerNormForward } from '../src/nn/layer-norm.js';
import { linearBackward, linearForward } from '../src/nn/linear.js';
import type { Program, Ptr } from '../src/nn/program.js';
import { residualForward } from '../src/nn/residual.js';

export interface MiniGpt {
  readonly B: number;
  readonly T: number;
  readonly C: number;
  readonly V: number;
}

/** Buffer name → floats (ids are int32, one per float slot). */
export function sizes(d: MiniGpt): Record<string, number> {
  const { B, T, C, V } = d;
  const N = B * T;
  const H = 4 * C;
  return {
    tokens: N, targets: N, wte: V * C, wpe: T * C, ln1g: C, ln1b: C, fcw: C * H, fcb: H, projw: H * C, projb: C, lnfg: C, lnfb: C,
    x0: N * C, ln1: N * C, mean1: N, rstd1: N, fc: N * H, g: N * H, proj: N * C, x1: N * C, lnf: N * C, meanf: N, rstdf: N, logits: N * V, losses: N,
    dwte: V * C, dwpe: T * C, dln1g: C, dln1b: C, dfcw: C * H, dfcb: H, dprojw: H * C, dprojb: C, dlnfg: C, dlnfb: C, dlnf: N * C, dx1: N * C, dg: N * H, dln1: N * C,
  };
}

/** Each buffer's byte offset from `base`, 64-byte aligned, in sizes() order; and where they end. */
export function layout(d: MiniGpt, base: Ptr): { at: Record<string, Ptr>; end: Ptr } {
  const at: Record<string, Ptr> = {};
  let p = base;
  for (const [name, floats] of Object.entries(sizes(d))) {
    at[name] = p;
    p = (p + 4 * floats + 63) & ~63;
  }
  return { at, end: p };
}

export function buildMiniGpt(p: Program, k: Kernels, d: MiniGpt, a: Record<string, Ptr>): void {
  const { B, T, C, V } = d;
  const N = B * T;
  const H = 4 * C;
  encoderForward(p, k, a.x0, a.tokens, a.wte, a.wpe, B, T, C);
  layerNormForward(p, k, a.ln1, a.mean1, a.rstd1, a.x0, a.ln1g, a.ln1b, N, C, 1e-5);
  linearForward(p, k, a.fc, a.ln1, a.fcw, a.fcb, N, C, H);
  geluForward(p, k, a.g, a.fc, N * H);
  linearForward(p, k, a.proj, a.g, a.projw, a.projb, N, H, C);
  residualForward(p, k, a.x1, a.x0, a.proj, N * C);
  layerNormForward(p, k, a.lnf, a.meanf, a.rstdf, a.x1, a.lnfg, a.lnfb, N, C, 1e-5);
  linearForward(p, k, a.logits, a.lnf, a.wte, null, N, C, V, { transposeWeight: true });
  crossEntropyForwardBackward(p, k, a.losses, a.logits, a.targets, N, V, 1 / N);
  linearBackward(p, k, a.dlnf, a.dwte, null, a.logits, a.lnf, a.wte, N, C, V, { transposeWeight: true });
  layerNormBackward(p, k, a.dx1, a.dlnfg, a.dlnfb, a.dlnf, a.x1, a.lnfg, a.meanf, a.rstdf, N, C, { accumulate: false });
  linearBackward(p, k, a.dg, a.dprojw, a.dprojb, a.dx1, a.g, a.projw, N, H, C);
  geluBackward(p, k, a.dg, a.fc, a.dg, N * H);
  linearBackward(p, k, a.dln1, a.dfcw, a.dfcb, a.dg, a.ln1, a.fcw, N, C, H);
  layerNormBackward(p, k, a.dx1, a.dln1g, a.dln1b, a.dln1, a.x0, a.ln1g, a.mean1, a.rstd1, N, C, { accumulate: true });
  encoderBackward(p, k, a.dwte, a.dwpe, a.dx1, a.tokens, B, T, C, V, { accumulateWte: true });
}
