// Float64 references of the engine's layers (src/nn/), written from the definitions, each with a bound per
// element on how far a correct float32 kernel may land from it: first-order rounding analysis with
// u = 2⁻²⁴ and γₙ = n·u/(1 − n·u) (Higham; as test/gemm.test.ts), worked out beside each reference. The
// inputs are the float32 values the kernel got, so the bounds cover the kernel's own arithmetic; where a
// backward reads what a forward saved (LayerNorm's mean and rstd, tanh's output), the effect of those
// values' own bounds is a separate term (used against finite differences of the exact forward).

import { expect } from 'chai';

export const u = 2 ** -24;
export const gamma = (n: number): number => (n * u) / (1 - n * u);
/** The smallest subnormal: an absolute floor for results that may round into the subnormals. */
export const kTiny = 2 ** -149;
/** Roundings any term of one of the kernels' row sums goes through (wasm/row-loops.mjs rowSums). */
export const sumDepth = (n: number): number => Math.floor(n / 8) + 7;
/** a·b with 0·∞ = 0 (a relative bound that overflows for an input whose result is exactly 0). */
export const times = (a: number, b: number): number => (a === 0 ? 0 : a * b);

/** Every element of got within bound of want (NaN fails unless want is NaN); the worst one is named. */
export function expectWithin(label: string, got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>): void {
  expect(got.length, `${label}: length`).to.equal(want.length);
  let worst = -1;
  let ratio = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i])) {
      if (!Number.isNaN(got[i])) expect.fail(`${label}[${i}]: ${got[i]}, want NaN`);
      continue;
    }
    if (!(bound[i] >= 0)) expect.fail(`${label}[${i}]: the reference's bound is ${bound[i]} (a bug in the test)`);
    const r = Math.abs(got[i] - want[i]) / bound[i];
    if (Number.isNaN(r)) expect.fail(`${label}[${i}]: ${got[i]}, float64 ${want[i]}`);
    if (!(r <= ratio)) {
      ratio = r;
      worst = i;
    }
  }
  if (process.env.SHARDTRAIN_NN_WORST) console.log(`      ${label}: worst error / bound ${ratio.toPrecision(3)}`);
  if (!(ratio <= 1)) expect.fail(`${label}[${worst}]: ${got[worst]}, float64 ${want[worst]}, error ${Math.abs(got[worst] - want[worst])} > bound ${bound[worst]}`);
}

/** A ⊗ B elementwise helpers. */
const f64 = (x: ArrayLike<number>): Float64Array => Float64Array.from(x);

// ---------------------------------------------------------------------------------------------------------
// Linear. out = inp·W + bias: each element is one GEMM dot product of k terms (+ bias, + the prior value when
// accumulating), so within γ(k+2)·Σ|terms| (test/matmul.test.ts); dbias is a sum over rows in order.

export interface Bounded {
  readonly want: Float64Array;
  readonly bound: Float64Array;
}

/** W(i, o) of a [cin, cout] weight, or of a [cout, cin] one (transposed). */
export const weightAt = (w: ArrayLike<number>, cin: number, cout: number, transposed: boolean) => (i: number, o: number): number => (transposed ? w[o * cin + i] : w[i * cout + o]);

/** C[m×n] = prior + Σ_k a(i, kk)·b(kk, j) (+ bias[j]) with its GEMM bound. */
export function refProduct(m: number, n: number, k: number, a: (i: number, kk: number) => number, b: (kk: number, j: number) => number, bias: ArrayLike<number> | null, prior: ArrayLike<number> | null): Bounded {
  const want = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = (bias ? bias[j] : 0) + (prior ? prior[i * n + j] : 0);
      let abs = Math.abs(bias ? bias[j] : 0) + Math.abs(prior ? prior[i * n + j] : 0);
      for (let kk = 0; kk < k; kk++) {
        const t = a(i, kk) * b(kk, j);
        s += t;
        abs += Math.abs(t);
      }
      want[i * n + j] = s;
      bound[i * n + j] = gamma(k + 2) * abs + kTiny;
    }
  }
  return { want, bound };
}

/** out[j] = prior[j] + Σ_r x[r·ld + j], rows in order: ≤ rows + 1 roundings per term. */
export function refColumnSums(x: ArrayLike<number>, rows: number, ld: number, cols: number, prior: ArrayLike<number> | null): Bounded {
  const want = new Float64Array(cols);
  const bound = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    let s = prior ? prior[j] : 0;
    let abs = Math.abs(s);
    for (let r = 0; r < rows; r++) {
      s += x[r * ld + j];
      abs += Math.abs(x[r * ld + j]);
    }
    want[j] = s;
    bound[j] = gamma(rows + 1) * abs + kTiny;
  }
  return { want, bound };
}

// ---------------------------------------------------------------------------------------------------------
// LayerNorm forward, per row of x (C floats), d = sumDepth(C):
//   μ̂ = fl(Σ̂x / C):  |μ̂ − μ| ≤ δ = γ(d+1)·Σ|x|/C.
//   σ̂² from Σ̂(fl(x − μ̂))²: the squares carry (1 + 3u), the sum γ(d), the ÷C and + ε one rounding each, and
//   Σ(x − μ − δ')² = Σ(x − μ)² + C·δ'² (the cross term vanishes): |(σ̂² + ε)^ − (σ² + ε)| ≤ Δ = γ(d+5)·(σ² + ε) + 2δ².
//   rstd = 1/√(σ² + ε): relative ρ ≤ 0.51·Δ/(σ² + ε) + γ(3) (½ from the root, with room for the second order;
//   the root and the division round).
//   out = fl(fl(fl(fl(x − μ̂)·rstd)·γ) + β): the centred value is off by ≤ δ(1 + u) + u·|x − μ|, then two
//   multiplications (γ(2)) and rstd's ρ, then the addition of β rounds: u·(|P| + |β|).

export interface LayerNormRef {
  readonly out: Bounded;
  readonly mean: Bounded;
  readonly rstd: Bounded;
  /** Per row: δ (the mean's bound) and ρ (rstd's relative bound), for the backward's sensitivity term. */
  readonly delta: Float64Array;
  readonly rho: Float64Array;
}

export function refLayerNormForward(x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>, rows: number, C: number, eps: number): LayerNormRef {
  const out = { want: new Float64Array(rows * C), bound: new Float64Array(rows * C) };
  const mean = { want: new Float64Array(rows), bound: new Float64Array(rows) };
  const rstd = { want: new Float64Array(rows), bound: new Float64Array(rows) };
  const delta = new Float64Array(rows);
  const rho = new Float64Array(rows);
  const d = sumDepth(C);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    let abs = 0;
    for (let c = 0; c < C; c++) {
      s += x[r * C + c];
      abs += Math.abs(x[r * C + c]);
    }
    const mu = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c] - mu) ** 2;
    v /= C;
    const rs = 1 / Math.sqrt(v + eps);
    const dl = (gamma(d + 1) * abs) / C;
    const big = gamma(d + 5) * (v + eps) + 2 * dl * dl;
    const rh = (0.51 * big) / (v + eps) + gamma(3);
    mean.want[r] = mu;
    mean.bound[r] = dl + kTiny;
    rstd.want[r] = rs;
    rstd.bound[r] = rh * rs;
    delta[r] = dl;
    rho[r] = rh;
    for (let c = 0; c < C; c++) {
      const xc = x[r * C + c] - mu;
      const p = xc * rs * g[c];
      out.want[r * C + c] = p + b[c];
      const centred = dl * (1 + u) + u * Math.abs(xc);
      out.bound[r * C + c] = Math.abs(g[c]) * rs * (centred * (1 + rh + gamma(2)) + Math.abs(xc) * (rh + gamma(2))) + u * (Math.abs(p) + Math.abs(b[c])) * (1 + u) + kTiny;
    }
  }
  return { out, mean, rstd, delta, rho };
}

// LayerNorm backward from the given (float32) mean and rstd, per row, d = sumDepth(C):
//   n̂ = (x − μ)·rstd (γ(2)), ĝ = dout·γ (u), a = Σg/C within γ(d+2)·Σ|g|/C, b = Σg·n̂/C within γ(d+5)·Σ|g·n|/C;
//   dinp = ((g − a) − n̂·b)·rstd: the errors of g, a, n̂·b (|n|·E_b + γ(3)|n·b|) plus three roundings on
//   |g| + |a| + |n·b|; accumulating adds u of the result and the prior.
//   dγ = Σ_r dout·n̂ (terms γ(3), rows in order), dβ = Σ_r dout.
// `sensitivity` (given the forward's δ and ρ per row): how much the saved statistics' own errors can move
// dinp, to first order: rstd scales it as (g − a)·rstd − 3·n·b·rstd, the mean shifts n by δ·rstd.

export interface LayerNormBackwardRef {
  readonly dinp: Bounded;
  readonly dgamma: Bounded;
  readonly dbeta: Bounded;
  /** Per element of dinp: the first-order effect of mean's δ and rstd's ρ (zero when not given). */
  readonly sensitivity: Float64Array;
}

export function refLayerNormBackward(
  dout: ArrayLike<number>, x: ArrayLike<number>, g: ArrayLike<number>, mean: ArrayLike<number>, rstd: ArrayLike<number>, rows: number, C: number,
  prior: ArrayLike<number> | null, stats?: { delta: ArrayLike<number>; rho: ArrayLike<number> },
): LayerNormBackwardRef {
  const dinp = { want: new Float64Array(rows * C), bound: new Float64Array(rows * C) };
  const sensitivity = new Float64Array(rows * C);
  const dgamma = { want: new Float64Array(C), bound: new Float64Array(C) };
  const dbeta = { want: new Float64Array(C), bound: new Float64Array(C) };
  const absG = new Float64Array(C);
  const absB = new Float64Array(C);
  const d = sumDepth(C);
  for (let r = 0; r < rows; r++) {
    const mu = mean[r];
    const rs = rstd[r];
    let sa = 0;
    let sb = 0;
    let aa = 0;
    let ab = 0;
    for (let c = 0; c < C; c++) {
      const n = (x[r * C + c] - mu) * rs;
      const gg = dout[r * C + c] * g[c];
      sa += gg;
      sb += gg * n;
      aa += Math.abs(gg);
      ab += Math.abs(gg * n);
      dgamma.want[c] += dout[r * C + c] * n;
      absG[c] += Math.abs(dout[r * C + c] * n);
      dbeta.want[c] += dout[r * C + c];
      absB[c] += Math.abs(dout[r * C + c]);
    }
    const a = sa / C;
    const b = sb / C;
    const ea = (gamma(d + 2) * aa) / C;
    const eb = (gamma(d + 5) * ab) / C;
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      const n = (x[i] - mu) * rs;
      const gg = dout[i] * g[c];
      const value = (gg - a - n * b) * rs;
      const magnitude = Math.abs(gg) + Math.abs(a) + Math.abs(n * b);
      let bound = rs * (u * Math.abs(gg) + ea + Math.abs(n) * eb + gamma(3) * Math.abs(n * b) + gamma(3) * magnitude) + kTiny;
      if (prior) {
        dinp.want[i] = prior[i] + value;
        bound += u * (Math.abs(prior[i]) + Math.abs(value) + bound);
      } else dinp.want[i] = value;
      dinp.bound[i] = bound;
      if (stats) sensitivity[i] = rs * (stats.rho[r] * (Math.abs(gg - a) + 3 * Math.abs(n * b)) + stats.delta[r] * rs * (Math.abs(b) + Math.abs(n) * Math.abs(a))) * (1 + stats.rho[r]);
    }
  }
  for (let c = 0; c < C; c++) {
    dgamma.bound[c] = gamma(rows + 3) * absG[c] + kTiny;
    dbeta.bound[c] = gamma(rows) * absB[c] + kTiny;
  }
  return { dinp, dgamma, dbeta, sensitivity };
}

// ---------------------------------------------------------------------------------------------------------
// GELU, tanh form: x·σ(w), w = 2√(2/π)(x + 0.044715x³). The kernel's w is within γ(5) relative, which exp
// turns into e^{|w|·γ(5)} − 1, plus exp's 2 ulps (γ(4)): η. Forward (x/(1 + e)): relative (1 − σ)·η + γ(2).
// Backward (dout·σ·(1 + x·w′·(1 − σ))): against σ·(1 + |T|), T = x·w′·(1 − σ): σ within (1 − σ)η + γ(2),
// 1 − σ (= e·σ) within η + that + u, T within those + γ(6), the result γ(3) more. Where the kernel clamps
// (−w > 88.72 forward: the result is −0; −w > 88 backward: e held at e⁸⁸), the error is at most the
// true value (forward) or dout·2⁻¹²⁶·(1 + |x·w′|) (backward). See wasm/nn.wat.mjs.

const kC = Math.sqrt(2 / Math.PI);
const wOf = (x: number): number => 2 * kC * (x + 0.044715 * x ** 3);
const sigmoid = (w: number): number => 1 / (1 + Math.exp(-w));

export function refGelu(x: ArrayLike<number>): Bounded {
  const want = new Float64Array(x.length);
  const bound = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const w = wOf(x[i]);
    const s = sigmoid(w);
    // ½x(1 + tanh(w/2)) = x·σ(w), in the form that does not cancel in float64 for x ≪ 0
    want[i] = x[i] * s;
    const eta = Math.expm1(Math.abs(w) * gamma(5)) + gamma(4);
    bound[i] = times(Math.abs(want[i]), (times(1 - s, eta) + gamma(2)) * (1 + gamma(1))) + kTiny + (-w > 88.72 ? Math.abs(want[i]) : 0);
  }
  return { want, bound };
}

export function refGeluBackward(x: ArrayLike<number>, dout: ArrayLike<number>): Bounded {
  const want = new Float64Array(x.length);
  const bound = new Float64Array(x.length);
  const parts = (xi: number) => {
    const w = wOf(xi);
    const s = sigmoid(w);
    const dw = 2 * kC * (1 + 3 * 0.044715 * xi * xi);
    return { w, s, q: 1 - s, dw, t: xi * dw * (1 - s) };
  };
  for (let i = 0; i < x.length; i++) {
    const exact = parts(x[i]);
    want[i] = dout[i] * exact.s * (1 + exact.t);
    // the kernel's arithmetic runs at x clamped to [−20, 20] (GELU′ is 1 above, below 1e-260 under): its bound is there
    const xc = Math.min(Math.max(x[i], -20), 20);
    const { w, s, q, dw, t } = parts(xc);
    const eta = Math.expm1(Math.abs(w) * gamma(5)) + gamma(4);
    const relS = q * eta + gamma(2);
    const relT = eta + relS + gamma(7);
    bound[i] = times(Math.abs(dout[i]) * s * (1 + Math.abs(t)), (relS + relT + gamma(3)) * (1 + relS + relT)) + kTiny + (-w > 88 ? Math.abs(dout[i]) * 2 ** -126 * (1 + Math.abs(xc * dw)) : 0);
  }
  return { want, bound };
}

// tanh: 3 ulps (≤ 6u relative) by wasm/map.wat.mjs's analysis. Its backward from the saved y:
// dout·(1 − y)(1 + y), four roundings: γ(4); the saved y's own error δy moves it by 2|y|·|dout|·δy.
export function refTanh(x: ArrayLike<number>): Bounded {
  const want = Float64Array.from(x, Math.tanh);
  return { want, bound: want.map((y) => 6 * u * Math.abs(y) + kTiny) };
}

export function refTanhBackward(y: ArrayLike<number>, dout: ArrayLike<number>): Bounded {
  const want = Float64Array.from(y, (yi, i) => dout[i] * (1 - yi) * (1 + yi));
  return { want, bound: want.map((v) => gamma(4) * Math.abs(v) + kTiny) };
}

// ---------------------------------------------------------------------------------------------------------
// Softmax cross-entropy of one row x (V floats), target t, m = max x:
//   e_j = exp(fl(x_j − m)): the subtraction's rounding u·|x_j − m| becomes e^{u|x_j − m|} − 1, plus exp's γ(4): η_j.
//   s = Σ̂ e: relative ≤ ρ = Σ e_j·η_j / Σ e_j + γ(sumDepth(V)) (positive terms).
//   loss = log s + m − x_t in float64, rounded once: ρ/(1 − ρ) + u·|loss| (+ 2⁻⁴⁰ of the float64 parts).
//   dlogits_j = fl(e_j·fl(scale/s)) (− scale at t, one more rounding): scale·p_j·(η_j + ρ + γ(3)), + u·|result| at t,
//   + u·|result| everywhere for scale's own rounding to float32.

/**
 * −log softmax(x)[t] in float64 without cancellation: log1p(Σ_{j≠t} e^{x_j − x_t}) when x_t is the max (a
 * confident row, where log s + m − x_t would lose the small loss to the rounding of s ≈ 1), else log s + m − x_t.
 */
export function crossEntropyOf(x: ArrayLike<number>, t: number): number {
  let m = -Infinity;
  for (let j = 0; j < x.length; j++) m = Math.max(m, x[j]);
  let s = 0;
  if (x[t] === m) {
    for (let j = 0; j < x.length; j++) if (j !== t) s += Math.exp(x[j] - m);
    return Math.log1p(s);
  }
  for (let j = 0; j < x.length; j++) s += Math.exp(x[j] - m);
  return Math.log(s) + m - x[t];
}

export interface CrossEntropyRef {
  readonly losses: Bounded;
  readonly dlogits: Bounded;
}

export function refCrossEntropy(logits: ArrayLike<number>, targets: ArrayLike<number>, rows: number, V: number, scale: number): CrossEntropyRef {
  const losses = { want: new Float64Array(rows), bound: new Float64Array(rows) };
  const dlogits = { want: new Float64Array(rows * V), bound: new Float64Array(rows * V) };
  for (let r = 0; r < rows; r++) {
    const row = f64(Array.prototype.slice.call(logits, r * V, (r + 1) * V) as number[]);
    const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
    let s = 0;
    let se = 0;
    const eta = row.map((x) => Math.expm1(u * Math.abs(x - m)) + gamma(4));
    for (let j = 0; j < V; j++) {
      const e = Math.exp(row[j] - m);
      s += e;
      se += times(e, eta[j]);
    }
    const rho = se / s + gamma(sumDepth(V));
    const t = targets[r];
    const loss = crossEntropyOf(row, t);
    losses.want[r] = loss;
    losses.bound[r] = rho / (1 - rho) + u * Math.abs(loss) + 2 ** -40 * (Math.abs(Math.log(s)) + Math.abs(m - row[t])) + kTiny;
    for (let j = 0; j < V; j++) {
      const p = Math.exp(row[j] - m) / s;
      const i = r * V + j;
      dlogits.want[i] = (p - (j === t ? 1 : 0)) * scale;
      // + u·|result|: the kernel takes scale as a float32 (fround(1/3) ≠ 1/3)
      dlogits.bound[i] = times(Math.abs(scale) * p, (eta[j] + rho + gamma(3)) * (1 + u)) + (j === t ? 2 : 1) * u * Math.abs(dlogits.want[i]) + kTiny;
    }
  }
  return { losses, dlogits };
}

// ---------------------------------------------------------------------------------------------------------
// Scatter of rows into a table (embedding backward): dtable[v] = prior[v] + Σ_{r: ids[r] = v} dout[r], in r order.
export function refScatter(dout: ArrayLike<number>, ids: ArrayLike<number>, count: number, E: number, V: number, prior: ArrayLike<number> | null): Bounded {
  const want = prior ? f64(prior) : new Float64Array(V * E);
  const abs = want.map(Math.abs);
  const uses = new Float64Array(V);
  for (let r = 0; r < count; r++) {
    uses[ids[r]]++;
    for (let c = 0; c < E; c++) {
      want[ids[r] * E + c] += dout[r * E + c];
      abs[ids[r] * E + c] += Math.abs(dout[r * E + c]);
    }
  }
  return { want, bound: abs.map((a, i) => gamma(uses[Math.floor(i / E)] + 1) * a + kTiny) };
}

// ---------------------------------------------------------------------------------------------------------
// Central differences of a float64 forward, Richardson-extrapolated: D(h) = Σ w·(f(x + h) − f(x − h))/2h at
// h and h/2, value (4·D(h/2) − D(h))/3 (error O(h⁴)), with an error bound of |D(h) − D(h/2)|/3 (the leading
// truncation of D(h/2), which the extrapolation removes) plus the rounding of f: each output carries ≤ depth·2⁻⁵³
// of its size, divided by h (×6 for the three evaluations' combination).

export interface Difference {
  readonly value: number;
  readonly error: number;
}

/** d/dx_i of Σ_j w_j·f(x)_j, perturbing x[i] in place (restored); f's sums are at most `depth` long. */
export function centralDifference(f: (x: Float64Array) => ArrayLike<number>, x: Float64Array, i: number, w: ArrayLike<number>, h: number, depth: number): Difference {
  const x0 = x[i];
  const at = (delta: number): ArrayLike<number> => {
    x[i] = x0 + delta;
    const out = f(x);
    x[i] = x0;
    return out;
  };
  let size = 0;
  const d = (step: number): number => {
    const plus = at(step);
    const minus = at(-step);
    let s = 0;
    for (let j = 0; j < w.length; j++) {
      s += w[j] * (plus[j] - minus[j]);
      size += Math.abs(w[j] * plus[j]) + Math.abs(w[j] * minus[j]);
    }
    return s / (2 * step);
  };
  const d1 = d(h);
  const d2 = d(h / 2);
  const rounding = (6 * depth * 2 ** -53 * size) / h;
  return { value: (4 * d2 - d1) / 3, error: Math.abs(d1 - d2) / 3 + rounding };
}
