// A float64 GPT in plain loops, written from the definitions (not from gpt-layers.ts), for the tests:
// LayerNorm, GELU (tanh), causal multi-head attention, the whole forward pass and its mean cross-entropy.
// Kernels are [in, out] as in the tfjs model; params are keyed by the model's tensor names. A bias or a
// LayerNorm β that is not in `p` (the bias-free GPT) is none: 0.

import { refCausalAttention } from './nn-reference-attention.js';

export type RefParams = Record<string, Float64Array>;

export interface RefShape {
  readonly vocab: number;
  readonly embedding: number;
  readonly heads: number;
  readonly layers: number;
  readonly tied: boolean;
}

/** y[r, :] = x[r, :] @ w [n, m] + b, for `rows` rows. */
export function refLinear(x: Float64Array, rows: number, n: number, w: Float64Array, b: Float64Array | null, m: number): Float64Array {
  const y = new Float64Array(rows * m);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < m; j++) {
      let s = b ? b[j] : 0;
      for (let k = 0; k < n; k++) s += x[r * n + k] * w[k * m + j];
      y[r * m + j] = s;
    }
  }
  return y;
}

export function refLayerNorm(x: Float64Array, rows: number, C: number, gamma: Float64Array, beta: Float64Array | undefined, eps = 1e-5): Float64Array {
  const y = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[r * C + c];
    mean /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c] - mean) ** 2;
    v /= C;
    for (let c = 0; c < C; c++) y[r * C + c] = ((x[r * C + c] - mean) / Math.sqrt(v + eps)) * gamma[c] + (beta ? beta[c] : 0);
  }
  return y;
}

export function refGelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/**
 * Causal self-attention on x [B, L, C]: q, k, v = column blocks of x @ qkv; head h uses columns
 * [h·d, (h+1)·d) of each; position i attends to j ≤ i with softmax(q_i·k_j/√d); then the projection.
 */
export function refAttention(x: Float64Array, B: number, L: number, C: number, H: number, p: RefParams, prefix: string): Float64Array {
  const qkv = refLinear(x, B * L, C, p[`${prefix}/qkv/kernel`], p[`${prefix}/qkv/bias`], 3 * C);
  const { out } = refCausalAttention(qkv, { B, T: L, C, heads: H });
  return refLinear(out, B * L, C, p[`${prefix}/proj/kernel`], p[`${prefix}/proj/bias`], C);
}

/** Logits [B, L, V] of tokens [B, L]. */
export function refLogits(p: RefParams, s: RefShape, tokens: Int32Array, B: number, L: number): Float64Array {
  const C = s.embedding;
  let x = new Float64Array(B * L * C);
  for (let r = 0; r < B * L; r++) {
    for (let c = 0; c < C; c++) x[r * C + c] = p['wte/embeddings'][tokens[r] * C + c] + p['wpe/embeddings'][(r % L) * C + c];
  }
  const add = (a: Float64Array, b: Float64Array) => a.map((v, i) => v + b[i]);
  for (let i = 0; i < s.layers; i++) {
    const blk = `block_${i}`;
    const h1 = refLayerNorm(x, B * L, C, p[`${blk}/layer_norm_1/gamma`], p[`${blk}/layer_norm_1/beta`]);
    x = add(x, refAttention(h1, B, L, C, s.heads, p, `${blk}/attn`));
    const h2 = refLayerNorm(x, B * L, C, p[`${blk}/layer_norm_2/gamma`], p[`${blk}/layer_norm_2/beta`]);
    const hidden = p[`${blk}/mlp/fc/kernel`].length / C;
    const f = refLinear(h2, B * L, C, p[`${blk}/mlp/fc/kernel`], p[`${blk}/mlp/fc/bias`], hidden).map(refGelu);
    x = add(x, refLinear(f, B * L, hidden, p[`${blk}/mlp/proj/kernel`], p[`${blk}/mlp/proj/bias`], C));
  }
  const h = refLayerNorm(x, B * L, C, p['layer_norm_f/gamma'], p['layer_norm_f/beta']);
  if (!s.tied) return refLinear(h, B * L, C, p['lm_head/kernel'], null, s.vocab);
  const wte = p['wte/embeddings'];
  const logits = new Float64Array(B * L * s.vocab);
  for (let r = 0; r < B * L; r++) {
    for (let v = 0; v < s.vocab; v++) {
      let t = 0;
      for (let c = 0; c < C; c++) t += h[r * C + c] * wte[v * C + c];
      logits[r * s.vocab + v] = t;
    }
  }
  return logits;
}

/** Mean cross-entropy of targets y [B, L]. */
export function refLoss(p: RefParams, s: RefShape, x: Int32Array, y: Int32Array, B: number, L: number): number {
  const logits = refLogits(p, s, x, B, L);
  let total = 0;
  for (let r = 0; r < B * L; r++) {
    const row = logits.subarray(r * s.vocab, (r + 1) * s.vocab);
    const max = Math.max(...row);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    total += max + Math.log(z) - row[y[r]];
  }
  return total / (B * L);
}
